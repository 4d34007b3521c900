package send

import (
	"errors"
	"strings"
	"testing"
	"text/template"
	"time"

	"followupd/config"
	"followupd/message"
)

func mustTemplate(t *testing.T, subject, body, html string) *config.Template {
	t.Helper()
	parse := func(part, text string) *template.Template {
		if text == "" {
			return nil
		}
		tt, err := template.New("template.test." + part).Option("missingkey=error").Parse(text)
		if err != nil {
			t.Fatalf("parse %s: %v", part, err)
		}
		return tt
	}
	return &config.Template{
		Subject: subject, Body: body, HTML: html,
		SubjectT: parse("subject", subject), BodyT: parse("body", body), HTMLT: parse("html", html),
	}
}

func sampleData() config.TemplateData {
	sent := time.Date(2026, 5, 12, 10, 30, 0, 0, time.UTC)
	return config.TemplateData{
		RecipientName:      "Пётр Сидоров",
		RecipientFirstName: "Пётр",
		RecipientAddress:   "petr@client.example",
		Recipients:         []message.Address{{Name: "Пётр Сидоров", Addr: "petr@client.example"}, {Addr: "cc@client.example"}},
		Subject:            "Коммерческое предложение №42",
		SentDate:           sent,
		SentDateText:       sent.Format("02.01.2006"),
		SenderName:         "Иван Петров",
		SenderAddress:      "ivan@seller.example",
		Step:               1,
		Steps:              2,
		DaysWaited:         3,
		Rule:               "offers",
		Kind:               "offer",
		Vars:               map[string]string{"number": "42"},
	}
}

// Every documented variable, in an English and a Russian template.
func TestRenderVariables(t *testing.T) {
	const en = `Hello {{.RecipientFirstName}} ({{.RecipientName}} <{{.RecipientAddress}}>, {{len .Recipients}} recipients),
on {{.SentDateText}} ({{.SentDate.Format "2006-01-02"}}) I sent "{{.Subject}}" (offer {{.Vars.number}}).
It has been {{.DaysWaited}} business days. Reminder {{.Step}} of {{.Steps}}, rule {{.Rule}}, kind {{.Kind}}.
{{.SenderName}} <{{.SenderAddress}}>`
	const wantEN = `Hello Пётр (Пётр Сидоров <petr@client.example>, 2 recipients),
on 12.05.2026 (2026-05-12) I sent "Коммерческое предложение №42" (offer 42).
It has been 3 business days. Reminder 1 of 2, rule offers, kind offer.
Иван Петров <ivan@seller.example>`
	const ru = `{{if .RecipientFirstName}}{{.RecipientFirstName}}, добрый день!{{else}}Добрый день!{{end}}
Напоминаю о предложении №{{.Vars.number}} от {{.SentDateText}} — прошло {{.DaysWaited}} рабочих дня.
С уважением, {{.SenderName}}`
	const wantRU = `Пётр, добрый день!
Напоминаю о предложении №42 от 12.05.2026 — прошло 3 рабочих дня.
С уважением, Иван Петров`

	for _, tc := range []struct {
		name                string
		tmpl                *config.Template
		data                func(d *config.TemplateData)
		subject, text, html string
	}{
		{"english, default subject", mustTemplate(t, "", en, ""), nil,
			"Re: Коммерческое предложение №42", wantEN, ""},
		{"russian with html", mustTemplate(t, "Напоминание: {{.Subject}}", ru, "<p>{{.RecipientFirstName}}, добрый день!</p>"), nil,
			"Напоминание: Коммерческое предложение №42", wantRU, "<p>Пётр, добрый день!</p>"},
		{"russian, no recipient name", mustTemplate(t, "", ru, ""),
			func(d *config.TemplateData) { d.RecipientName, d.RecipientFirstName = "", "" },
			"Re: Коммерческое предложение №42", strings.Replace(wantRU, "Пётр, добрый день!", "Добрый день!", 1), ""},
		{"config's default subject does not stack", mustTemplate(t, config.DefaultSubject, "x", ""),
			func(d *config.TemplateData) { d.Subject = "RE: offer" }, "RE: offer", "x", ""},
		{"default subject keeps Отв", mustTemplate(t, "", "x", ""),
			func(d *config.TemplateData) { d.Subject = "Отв: счёт 17" }, "Отв: счёт 17", "x", ""},
		{"subject is one line", mustTemplate(t, "Re: {{.Subject}}\n{{.Kind}}", "x", ""), nil,
			"Re: Коммерческое предложение №42 offer", "x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := sampleData()
			if tc.data != nil {
				tc.data(&d)
			}
			subject, text, html, err := Render(tc.tmpl, d)
			if err != nil {
				t.Fatal(err)
			}
			if subject != tc.subject {
				t.Errorf("subject = %q, want %q", subject, tc.subject)
			}
			if text != tc.text {
				t.Errorf("text =\n%s\nwant\n%s", text, tc.text)
			}
			if html != tc.html {
				t.Errorf("html = %q, want %q", html, tc.html)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		tmpl *config.Template
		want error
	}{
		{"nil template", nil, ErrNoTemplate},
		{"no body", mustTemplate(t, "x", "", ""), ErrNoTemplate},
		{"empty output", mustTemplate(t, "", "{{if false}}x{{end}}  \n", ""), ErrEmptyBody},
		{"missing var", mustTemplate(t, "", "{{.Vars.nosuch}}", ""), nil},
		{"bad call in subject", mustTemplate(t, "{{.Subject.Foo}}", "x", ""), nil},
		{"bad html", mustTemplate(t, "", "x", "{{index .Recipients 5}}"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := Render(tc.tmpl, sampleData())
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && !strings.Contains(err.Error(), "template.test.") {
				t.Errorf("error does not name the template: %v", err)
			}
		})
	}
}

func TestReplySubject(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Re: offer", "Re: offer"},
		{"Re: Re: offer", "Re: offer"},
		{"Re: RE: offer", "RE: offer"},
		{"Re: Отв: счёт", "Отв: счёт"},
		{"Re: ОТВ: счёт", "ОТВ: счёт"},
		{"Re: Re[2]: offer", "Re[2]: offer"},
		{"Re: AW: Angebot", "AW: Angebot"},
		{"Re: Re : offer", "Re: offer"}, // "Re :" is normalised
		{"Re: 回复：报价", "回复: 报价"},
		{"  Re:   offer  ", "Re: offer"},
		{"Re:", "Re:"},
		{"Re: Re:", "Re:"},
		{"Re: Regarding: x", "Re: Regarding: x"},
		{"Re: Fwd: x", "Re: Fwd: x"},
		{"Re: Re[x]: y", "Re: Re[x]: y"},
		{"Reminder: x", "Reminder: x"},
		{"Напоминание: x", "Напоминание: x"},
		{"offer", "offer"},
		{"", ""},
	} {
		if got := ReplySubject(tc.in); got != tc.want {
			t.Errorf("ReplySubject(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzReplySubject(f *testing.F) {
	for _, s := range []string{"Re: Re: x", "Re[2]: Отв: y", "回复：z", "Re(", "Re[", ":", "Re: "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ReplySubject(s)
		if again := ReplySubject(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
		if _, rest, ok := cutReplyPrefix(got); ok {
			if _, _, ok2 := cutReplyPrefix(rest); ok2 {
				t.Fatalf("%q -> %q still stacks prefixes", s, got)
			}
		}
		if len(got) > len(s)+1 {
			t.Fatalf("%q grew to %q", s, got)
		}
	})
}
