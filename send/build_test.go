package send

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"followupd/message"
)

func testReminder() *Reminder {
	return &Reminder{
		FollowUpID: 7,
		Step:       2,
		From:       message.Address{Name: "Иван Петров", Addr: "ivan@seller.example"},
		To:         []message.Address{{Name: "Client Buyer", Addr: "buyer@client.example"}},
		Cc:         []message.Address{{Addr: "boss@client.example"}},
		Subject:    "Re: Коммерческое предложение №42",
		InReplyTo:  "orig-42@seller.example",
		References: []string{"root@client.example", "orig-42@seller.example"},
		MessageID:  message.NewOwnMessageID("seller.example", 7, 2),
		Date:       time.Date(2026, 5, 15, 9, 30, 0, 0, time.FixedZone("MSK", 3*3600)),
		Text:       "Добрый день!\nНапоминаю о нашем предложении. Строка достаточно длинная, чтобы quoted-printable её перенёс на следующую строку.\n",
	}
}

// parsed is a built reminder read back with the standard library.
type parsed struct {
	hdr   netmail.Header
	text  string
	html  string
	ctype string
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("bare LF in message:\n%s", raw)
	}
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("reading built message: %v\n%s", err, raw)
	}
	p := parsed{hdr: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content-type: %v", err)
	}
	p.ctype = mt
	decode := func(h interface{ Get(string) string }, r io.Reader) string {
		if !strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
			t.Errorf("part encoding %q, want quoted-printable", h.Get("Content-Transfer-Encoding"))
		}
		b, err := io.ReadAll(quotedprintable.NewReader(r))
		if err != nil {
			t.Fatalf("decoding part: %v", err)
		}
		return strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	switch mt {
	case "text/plain":
		if !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("charset %q", params["charset"])
		}
		p.text = decode(m.Header, m.Body)
	case "multipart/alternative":
		mr := multipart.NewReader(m.Body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
			switch pt {
			case "text/plain":
				p.text = decode(part.Header, part)
			case "text/html":
				p.html = decode(part.Header, part)
			default:
				t.Errorf("unexpected part %q", pt)
			}
		}
	default:
		t.Fatalf("content type %q", mt)
	}
	return p
}

func decodeHeader(t *testing.T, v string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		t.Fatalf("decoding %q: %v", v, err)
	}
	return s
}

func TestBuildThreading(t *testing.T) {
	r := testReminder()
	raw, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, raw)
	h := p.hdr
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("Message-ID", h.Get("Message-ID"), "<"+r.MessageID+">")
	check("In-Reply-To", h.Get("In-Reply-To"), "<orig-42@seller.example>")
	check("References", strings.Join(strings.Fields(h.Get("References")), " "), "<root@client.example> <orig-42@seller.example>")
	check("X-Followupd", h.Get(message.OwnHeader), "id=7; step=2")
	check("Subject", decodeHeader(t, h.Get("Subject")), "Re: Коммерческое предложение №42")
	if strings.Contains(h.Get("Subject"), "Коммерческое") {
		t.Errorf("Subject not encoded: %q", h.Get("Subject"))
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 {
		t.Fatalf("From %q: %v", h.Get("From"), err)
	}
	check("From name", from[0].Name, "Иван Петров")
	check("From addr", from[0].Address, "ivan@seller.example")
	if !strings.Contains(h.Get("From"), "=?") {
		t.Errorf("From display name not encoded: %q", h.Get("From"))
	}
	to, _ := h.AddressList("To")
	cc, _ := h.AddressList("Cc")
	if len(to) != 1 || to[0].Address != "buyer@client.example" || to[0].Name != "Client Buyer" || len(cc) != 1 || cc[0].Address != "boss@client.example" {
		t.Errorf("To %q Cc %q", h.Get("To"), h.Get("Cc"))
	}
	date, err := h.Date()
	if err != nil || !date.Equal(r.Date) {
		t.Errorf("Date %q (%v), want %v", h.Get("Date"), err, r.Date)
	}
	if h.Get("Bcc") != "" || h.Get("User-Agent") != "" || h.Get("X-Mailer") != "" {
		t.Errorf("unexpected headers: Bcc %q User-Agent %q X-Mailer %q", h.Get("Bcc"), h.Get("User-Agent"), h.Get("X-Mailer"))
	}
	check("Content-Type", p.ctype, "text/plain")
	check("text", p.text, r.Text)
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line over 998 octets: %.60q...", line)
		}
	}
	// The record our own sync would make of it is recognised as ours.
	fu, step, ok := message.ParseOwnMessageID(r.MessageID)
	if !ok || fu != 7 || step != 2 {
		t.Errorf("ParseOwnMessageID(%q) = %d, %d, %v", r.MessageID, fu, step, ok)
	}
}

func TestBuildHTML(t *testing.T) {
	r := testReminder()
	r.HTML = "<p>Добрый день!</p>"
	raw, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, raw)
	if p.ctype != "multipart/alternative" || p.text != r.Text || p.html != r.HTML {
		t.Errorf("ctype %q text %q html %q", p.ctype, p.text, p.html)
	}
}

func TestBuildReferences(t *testing.T) {
	many := make([]string, 30)
	for i := range many {
		many[i] = fmt.Sprintf("m%d@x.example", i)
	}
	for _, tc := range []struct {
		name string
		refs []string
		irt  string
		want string
	}{
		{"none", nil, "o@x", "<o@x>"},
		{"appends in-reply-to", []string{"a@x"}, "o@x", "<a@x> <o@x>"},
		{"moves in-reply-to last", []string{"o@x", "a@x"}, "o@x", "<a@x> <o@x>"},
		{"drops duplicates and junk", []string{"a@x", "<a@x>", "bad id", "", "noat", "<b@x>"}, "o@x", "<a@x> <b@x> <o@x>"},
		{"keeps root and the newest", many, "o@x", "<m0@x.example> " + func() string {
			var s []string
			for i := 12; i < 30; i++ {
				s = append(s, fmt.Sprintf("<m%d@x.example>", i))
			}
			return strings.Join(s, " ")
		}() + " <o@x>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := formatReferences(tc.refs, tc.irt)
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if n := len(strings.Fields(got)); n > maxReferences {
				t.Errorf("%d references", n)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(r *Reminder)
		want error
	}{
		{"no sender", func(r *Reminder) { r.From.Addr = "" }, ErrNoSender},
		{"no recipients", func(r *Reminder) { r.To, r.Cc = nil, nil }, ErrNoRecipient},
		{"no text", func(r *Reminder) { r.Text = " \n" }, ErrNoBody},
		{"bad sender", func(r *Reminder) { r.From.Addr = "not an address" }, nil},
		{"bad recipient", func(r *Reminder) { r.To[0].Addr = "x@y\r\nBcc: evil@z" }, nil},
		{"bracketed message-id", func(r *Reminder) { r.MessageID = "<a@b>" }, nil},
		{"empty in-reply-to", func(r *Reminder) { r.InReplyTo = "" }, nil},
		{"in-reply-to with space", func(r *Reminder) { r.InReplyTo = "a b@c" }, nil},
		{"no date", func(r *Reminder) { r.Date = time.Time{} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testReminder()
			tc.mod(r)
			raw, err := Build(r)
			if err == nil {
				t.Fatalf("Build accepted it:\n%s", raw)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Build(nil); err == nil {
		t.Error("Build(nil) accepted")
	}
}

// A subject or name carrying CR/LF must not add a header.
func TestBuildNoHeaderInjection(t *testing.T) {
	r := testReminder()
	r.Subject = "Re: offer\r\nBcc: evil@example.com"
	r.From.Name = "Ivan\nBcc: evil@example.com"
	raw, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, raw)
	if p.hdr.Get("Bcc") != "" {
		t.Fatalf("header injected:\n%s", raw)
	}
	if got := decodeHeader(t, p.hdr.Get("Subject")); got != "Re: offer Bcc: evil@example.com" {
		t.Errorf("Subject = %q", got)
	}
}

func FuzzBuild(f *testing.F) {
	f.Add("Re: Коммерческое предложение", "Иван Петров", "Добрый день!\n.\nточка", "")
	f.Add("Re: offer\r\nBcc: x@y", "A \"B\" <c>", "hi", "<p>hi</p>")
	f.Add("", "", ".", "")
	f.Fuzz(func(t *testing.T, subject, name, text, html string) {
		r := testReminder()
		r.Subject, r.From.Name, r.Text, r.HTML = subject, name, text, html
		raw, err := Build(r)
		if err != nil {
			if strings.TrimSpace(text) == "" {
				return
			}
			t.Fatalf("Build: %v", err)
		}
		m, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("unparseable: %v\n%q", err, raw)
		}
		// Threading and identity survive whatever the user wrote.
		if m.Header.Get("In-Reply-To") != "<orig-42@seller.example>" ||
			m.Header.Get("Message-ID") != "<"+r.MessageID+">" ||
			m.Header.Get(message.OwnHeader) != "id=7; step=2" ||
			len(m.Header["Subject"]) != 1 || len(m.Header["From"]) != 1 || m.Header.Get("Bcc") != "" {
			t.Fatalf("headers damaged:\n%q", raw)
		}
	})
}
