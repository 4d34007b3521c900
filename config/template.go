package config

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"followupd/message"
)

// DefaultSubject is a template's subject when none is configured.
const DefaultSubject = "Re: {{.Subject}}"

// TemplateData is what a reminder template sees; package send fills it.
// Templates use text/template with missingkey=error, so a misspelt field or
// a capture the rule does not define fails at load, not at send time.
type TemplateData struct {
	RecipientName      string            // display name of the first recipient, decoded; may be ""
	RecipientFirstName string            // first word of RecipientName; may be ""
	RecipientAddress   string            // first recipient's address
	Recipients         []message.Address // everyone the reminder goes to
	Subject            string            // the tracked message's subject, decoded, as sent
	SentDate           time.Time         // when the tracked message was sent, in the account's zone
	SentDateText       string            // SentDate as "02.01.2006"
	SenderName         string            // the account's display_name
	SenderAddress      string            // the account's address
	Step               int               // this reminder's number, from 1
	Steps              int               // number of steps in the rule's chain
	DaysWaited         int               // business days since the tracked message was sent
	Rule               string            // the rule's name
	Kind               string            // the rule's kind ("offer", "invoice")
	// Vars holds the named captures of the rule's regexes that matched
	// ({{.Vars.number}} for (?P<number>...)); a capture that did not take
	// part in the match is "".
	Vars map[string]string
}

// SampleData returns realistic TemplateData, used to execute every template
// at load time and by `followupd` to preview templates.
func SampleData() TemplateData {
	sent := time.Date(2026, time.May, 12, 10, 30, 0, 0, time.UTC)
	return TemplateData{
		RecipientName:      "Ivan Petrov",
		RecipientFirstName: "Ivan",
		RecipientAddress:   "ivan.petrov@client.example",
		Recipients:         []message.Address{{Name: "Ivan Petrov", Addr: "ivan.petrov@client.example"}},
		Subject:            "Commercial offer No. 42",
		SentDate:           sent,
		SentDateText:       sent.Format("02.01.2006"),
		SenderName:         "Maria Sidorova",
		SenderAddress:      "maria@seller.example",
		Step:               1,
		Steps:              2,
		DaysWaited:         3,
		Rule:               "offer",
		Kind:               "offer",
		Vars:               map[string]string{},
	}
}

// sampleFor is SampleData with Vars holding each capture name of the rule.
func sampleFor(r *Rule, step int) TemplateData {
	d := SampleData()
	d.Rule, d.Kind = r.Name, r.Kind
	d.Step, d.Steps = step, len(r.Steps)
	for _, n := range r.Captures() {
		d.Vars[n] = "12345"
	}
	return d
}

// Captures returns the names of the named groups in the rule's subject,
// body and header regexes, sorted and without duplicates.
func (r *Rule) Captures() []string {
	seen := map[string]bool{}
	add := func(rs ...Regexp) {
		for _, re := range rs {
			for _, n := range re.Captures() {
				seen[n] = true
			}
		}
	}
	add(r.Match.Subject...)
	add(r.Match.Body...)
	for _, re := range r.Match.Header {
		add(re)
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// tmplPos finds "template: NAME:LINE:" in a text/template error.
var tmplPos = regexp.MustCompile(`template: [^:]*:(\d+):`)

// compileTemplates parses every template and executes it with sample data.
// A template used by rules is executed once per using rule, with Vars
// holding that rule's captures; an unused one with no Vars.
func compileTemplates(c *Config, ps *problems, src []string) {
	names := make([]string, 0, len(c.Templates))
	for n := range c.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t := c.Templates[name]
		base := joinPath("template", name)
		if t.Subject == "" {
			t.Subject = DefaultSubject
		}
		if strings.TrimSpace(t.Body) == "" {
			ps.addf(joinPath(base, "body"), "a template needs a body")
		}
		parts := []struct {
			key  string
			text string
			dst  **template.Template
		}{
			{"subject", t.Subject, &t.SubjectT},
			{"body", t.Body, &t.BodyT},
			{"html", t.HTML, &t.HTMLT},
		}
		for _, p := range parts {
			*p.dst = nil
			if p.text == "" {
				continue
			}
			key := joinPath(base, p.key)
			tt, err := template.New(key).Option("missingkey=error").Parse(p.text)
			if err != nil {
				ps.addLine(templateLine(ps, key, err, src), key, "%s", err)
				continue
			}
			*p.dst = tt
		}
		c.Templates[name] = t
	}

	// Execute: per using rule (with its captures), else once plainly.
	used := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		for j, s := range r.Steps {
			t, ok := c.Templates[s.Template]
			if !ok || used[s.Template+"\x00"+r.Name] {
				continue
			}
			used[s.Template] = true
			used[s.Template+"\x00"+r.Name] = true
			what := fmt.Sprintf("for rule %q", r.Name)
			if caps := r.Captures(); len(caps) > 0 {
				what += fmt.Sprintf(" (its captures: %s)", strings.Join(caps, ", "))
			} else {
				what += " (it has no named captures)"
			}
			executeTemplate(ps, s.Template, &t, sampleFor(r, j+1), what, src)
		}
	}
	for _, name := range names {
		if !used[name] {
			t := c.Templates[name]
			executeTemplate(ps, name, &t, SampleData(), "with no rule captures (no rule uses it)", src)
		}
	}
}

func executeTemplate(ps *problems, name string, t *Template, data TemplateData, what string, src []string) {
	base := joinPath("template", name)
	for _, p := range []struct {
		key string
		tt  *template.Template
	}{{"subject", t.SubjectT}, {"body", t.BodyT}, {"html", t.HTMLT}} {
		if p.tt == nil {
			continue
		}
		if err := p.tt.Execute(io.Discard, data); err != nil {
			key := joinPath(base, p.key)
			ps.addLine(templateLine(ps, key, err, src), key, "executing %s: %s", what, err)
		}
	}
}

// templateLine places a template error on the file line it names, when
// the error carries the template's own line: a value written as
// body = """ starts on the next line.
func templateLine(ps *problems, key string, err error, src []string) int {
	line := ps.lines.line(key)
	m := tmplPos.FindStringSubmatch(err.Error())
	if m == nil || line <= 0 || line > len(src) {
		return line
	}
	n, aerr := strconv.Atoi(m[1])
	if aerr != nil || n < 1 {
		return line
	}
	_, val, _ := strings.Cut(src[line-1], "=")
	val = strings.TrimSpace(val)
	if val == `"""` || val == `'''` {
		n++ // the newline right after the opening quotes is not part of the value
	}
	if l := line + n - 1; l <= len(src) {
		return l
	}
	return line
}
