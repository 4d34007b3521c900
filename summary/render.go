package summary

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

//go:embed summary.html.tmpl
var htmlSource string

// htmlTemplate is parsed once; a template is safe for concurrent Execute.
var htmlTemplate = template.Must(template.New("summary").Funcs(template.FuncMap{
	"dayTime": dayTime,
	"date":    func(t time.Time) string { return t.Format("Mon 02 Jan") },
	"days":    days,
	"pct":     pct,
	"step":    stepName,
	"daysSince": func(now, t time.Time) int {
		return int(now.Sub(t) / (24 * time.Hour))
	},
	"chartHeight": func() int { return chartHeight },
	"tile": func(n int, label, color string) tileView {
		return tileView{N: n, Label: label, Color: color}
	},
	"heading": func(text string, n int, color string) headingView {
		return headingView{Text: text, N: n, Color: color}
	},
	"conv": func(name, prefix string, c Conversion) convView {
		return convView{Name: name, Prefix: prefix, C: c}
	},
	"rateOf": func(a, n int) rateView { return rateView{A: a, N: n, Pct: rate(a, n)} },
}).Parse(htmlSource))

type tileView struct {
	N     int
	Label string
	Color string
}

type headingView struct {
	Text  string
	N     int // -1: no count
	Color string
}

type convView struct {
	Name, Prefix string
	C            Conversion
}

type rateView struct{ A, N, Pct int }

// Output is one rendered summary.
type Output struct {
	Subject string
	Text    string
	HTML    string
	Report  *Report
}

// Render computes d's report at now in loc and renders it as a subject, a
// plain-text body and an HTML body.
func Render(d Data, now time.Time, loc *time.Location) (*Output, error) {
	r := Compute(d, now, loc)
	out := &Output{Subject: subject(r), Text: text(r), Report: r}
	var b bytes.Buffer
	if err := htmlTemplate.Execute(&b, htmlView(r)); err != nil {
		return nil, fmt.Errorf("summary: rendering HTML for %s: %w", d.Title, err)
	}
	out.HTML = b.String()
	return out, nil
}

// Headline is the one-line count the subject and both bodies open with.
func (r *Report) Headline() string {
	parts := []string{plural(len(r.Waiting), "waiting", "waiting")}
	if r.WaitingOverdue > 0 {
		parts[0] += fmt.Sprintf(" (%d due now)", r.WaitingOverdue)
	}
	parts = append(parts, plural(countReal(r.Sent), "reminder sent", "reminders sent"))
	a := plural(len(r.Answered), "answer", "answers")
	if len(r.Answered) > 0 {
		a += fmt.Sprintf(" (%d after a reminder)", r.AfterReminder)
	}
	parts = append(parts, a)
	if len(r.Needs) > 0 {
		parts = append(parts, plural(len(r.Needs), "needs you", "need you"))
	}
	if len(r.Drafts) > 0 {
		parts = append(parts, plural(len(r.Drafts), "draft to approve", "drafts to approve"))
	}
	return strings.Join(parts, ", ")
}

func subject(r *Report) string {
	who := "Follow-ups"
	if r.Team {
		who = "Team follow-ups"
	}
	var parts []string
	if len(r.Needs) > 0 {
		parts = append(parts, plural(len(r.Needs), "needs you", "need you"))
	}
	if len(r.Drafts) > 0 {
		parts = append(parts, plural(len(r.Drafts), "draft", "drafts"))
	}
	parts = append(parts, plural(len(r.Waiting), "waiting", "waiting"))
	if n := len(r.Answered); n > 0 {
		parts = append(parts, plural(n, "answer", "answers"))
	}
	return fmt.Sprintf("%s %s: %s", who, r.Now.Format("Mon 02 Jan"), strings.Join(parts, ", "))
}

func countReal(items []Item) int {
	n := 0
	for _, it := range items {
		if !it.DryRun {
			n++
		}
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func days(n int) string {
	switch n {
	case 0:
		return "today"
	case 1:
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

func pct(a, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d · %d%%", a, n, rate(a, n))
}

// clip shortens s to n runes with an ellipsis, for the text tables.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func text(r *Report) string {
	var b strings.Builder
	title := "Follow-ups for " + r.Title
	fmt.Fprintf(&b, "%s, %s (%s)\n", title, r.Now.Format("Mon 02 Jan 2006 15:04"), r.Now.Location())
	fmt.Fprintf(&b, "%s\n", r.Headline())
	since := dayTime(r.Since)
	sender := func(it Item) string {
		if r.Team {
			return clip(it.Sender, 18) + "\t"
		}
		return ""
	}
	tw := func() *tabwriter.Writer { return tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0) }

	if len(r.Needs) > 0 {
		fmt.Fprintf(&b, "\nNEEDS YOU (%d)\n", len(r.Needs))
		for _, it := range r.Needs {
			fmt.Fprintf(&b, "  %s  %s%s to %s\n      %s\n", it.At.Format("Mon 02 Jan"), teamPrefix(r, it), quote(it.Subject), it.To, it.Note)
		}
	}
	if len(r.Drafts) > 0 {
		fmt.Fprintf(&b, "\nAPPROVALS WAITING IN DRAFTS (%d): send them from Drafts, or delete to skip\n", len(r.Drafts))
		w := tw()
		for _, it := range r.Drafts {
			fmt.Fprintf(w, "  %s\t%s%s\t%s\t%s\tin Drafts since %s\n", days(int(r.Now.Sub(it.At)/(24*time.Hour))), sender(it), clip(it.To, 24), clip(it.Subject, 44), stepName(it.Step, it.Steps), it.At.Format("Mon 02 Jan"))
		}
		w.Flush()
	}
	fmt.Fprintf(&b, "\nWAITING FOR AN ANSWER (%d, oldest first)\n", len(r.Waiting))
	if len(r.Waiting) == 0 {
		b.WriteString("  nothing is waiting\n")
	} else {
		w := tw()
		team := ""
		if r.Team {
			team = "Sender\t"
		}
		fmt.Fprintf(w, "  Age\t%sTo\tSubject\tAmount\tNext\n", team)
		for _, it := range r.Waiting {
			fmt.Fprintf(w, "  %s\t%s%s\t%s\t%s\t%s\n", days(it.Age), sender(it), clip(it.To, 24), clip(it.Subject, 44), it.Amount, it.Next)
		}
		w.Flush()
	}
	fmt.Fprintf(&b, "\nREMINDERS SENT SINCE %s (%d)\n", since, len(r.Sent))
	if len(r.Sent) == 0 {
		b.WriteString("  none\n")
	}
	for _, it := range r.Sent {
		dry := ""
		if it.DryRun {
			dry = " [dry-run: recorded, not sent]"
		}
		fmt.Fprintf(&b, "  %s  %s%s to %s: %s%s\n", it.At.Format("Mon 15:04"), teamPrefix(r, it), stepName(it.Step, it.Steps), it.To, quote(it.Subject), dry)
	}
	fmt.Fprintf(&b, "\nANSWERS SINCE %s (%d, %d after a reminder)\n", since, len(r.Answered), r.AfterReminder)
	if len(r.Answered) == 0 {
		b.WriteString("  none\n")
	}
	for _, it := range r.Answered {
		after := "without a reminder"
		if it.Reminded {
			after = fmt.Sprintf("after %s", plural(it.Reminders, "reminder", "reminders"))
		}
		by := it.To
		if it.Note != "" {
			by = it.Note
		}
		fmt.Fprintf(&b, "  %s  %s%s answered %s, %s\n", it.At.Format("Mon 15:04"), teamPrefix(r, it), by, quote(it.Subject), after)
	}

	b.WriteString("\nCONVERSION (answered after a reminder / reminded)\n")
	w := tw()
	fmt.Fprintf(w, "  \t7 days\t30 days\n")
	rows := r.ByRule
	if r.Team {
		for _, c := range r.BySender {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", clip(c.Name, 28), pct(c.Answered7, c.Reminded7), pct(c.Answered30, c.Reminded30))
		}
	}
	for _, c := range rows {
		fmt.Fprintf(w, "  rule %s\t%s\t%s\n", clip(c.Name, 23), pct(c.Answered7, c.Reminded7), pct(c.Answered30, c.Reminded30))
	}
	fmt.Fprintf(w, "  all\t%s\t%s\n", pct(r.Total.Answered7, r.Total.Reminded7), pct(r.Total.Answered30, r.Total.Reminded30))
	w.Flush()

	b.WriteString("\nLAST 14 DAYS\n")
	fmt.Fprintf(&b, "  %-10s  %-16s  %s\n", "", "reminders (#)", "answers (=)")
	for _, d := range r.Chart {
		fmt.Fprintf(&b, "  %s  %-12s %2d  %-12s %2d\n", d.Date.Format("Mon 02 Jan"), textBar(d.Reminders, r.ChartMax, '#'), d.Reminders,
			textBar(d.Answers, r.ChartMax, '='), d.Answers)
	}
	b.WriteString("\n-- \nfollowupd daily summary. Flag a sent message, or move it to the Stop folder, to stop its reminders.\n")
	return b.String()
}

func teamPrefix(r *Report, it Item) string {
	if r.Team {
		return "[" + it.Sender + "] "
	}
	return ""
}

func quote(s string) string { return "«" + clip(s, 60) + "»" }

func textBar(v, maxV int, c byte) string {
	if maxV == 0 || v == 0 {
		return ""
	}
	n := max(1, (v*12+maxV/2)/maxV)
	return strings.Repeat(string(c), n)
}

// chartHeight is the tallest bar in pixels.
const chartHeight = 84

type barView struct {
	Label, Weekday, Title string
	Weekend               bool
	R, A                  int // pixel heights
	RN, AN                int
}

type view struct {
	*Report
	Headline  string
	SinceText string
	Bars      []barView
	Scale     int
	SentReal  int
}

func htmlView(r *Report) view {
	v := view{Report: r, Headline: r.Headline(), SinceText: dayTime(r.Since), Scale: r.ChartMax, SentReal: countReal(r.Sent)}
	h := func(n int) int {
		if n == 0 || r.ChartMax == 0 {
			return 0
		}
		return max(3, (n*chartHeight+r.ChartMax/2)/r.ChartMax)
	}
	for _, d := range r.Chart {
		wd := d.Date.Weekday()
		v.Bars = append(v.Bars, barView{
			Label: d.Date.Format("2"), Weekday: d.Date.Format("Mon")[:2],
			Title:   fmt.Sprintf("%s: %d reminders, %d answers", d.Date.Format("Mon 02 Jan"), d.Reminders, d.Answers),
			Weekend: wd == time.Saturday || wd == time.Sunday,
			R:       h(d.Reminders), A: h(d.Answers), RN: d.Reminders, AN: d.Answers,
		})
	}
	return v
}
