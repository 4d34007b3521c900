package daemon_test

import (
	"strings"
	"testing"
	"time"

	"followupd/daemon"
)

const boss = "boss@seller.test"

const summaryConfig = `
[summary]
enabled = true
time = "08:30"
leads = ["boss@seller.test"]
`

// The daily summary goes out at 08:30 on business days: each sender gets
// their own, the lead the team's, through SMTP as text + HTML; a restart
// the same day does not send it again.
func TestDailySummary(t *testing.T) {
	start := monday(t) // Monday 23 Nov 10:00: today's 08:30 has passed
	loc := start.Location()
	maria := "maria@seller.test"
	w := newWorld(t, start, seller, maria, client, boss)
	cfg := w.config(summaryConfig, seller, maria)
	_, stop := w.run(cfg)
	w.sendOffer(seller, client, "offer-s1@seller.test", "Коммерческое предложение №5 <срочно>", start.Add(-time.Hour))
	w.sendOffer(maria, "boris@client.test", "offer-s2@seller.test", "Offer 9: valves", start.Add(-time.Hour))
	w.expect("tracked", "offer-s1@seller.test")
	w.expect("tracked", "offer-s2@seller.test")
	w.deliver(maria, rawMessage("reply-s2@client.test", "offer-s2@seller.test", "boris@client.test", maria, "Re: Offer 9: valves", "Yes.", start.Add(time.Hour), ""))
	w.expect("answered", "offer-s2@seller.test")

	// A first start does not send the day's summary late.
	w.quiet("summary", 200*time.Millisecond)
	w.advanceTo(time.Date(2026, 11, 24, 8, 29, 0, 0, loc))
	w.quiet("summary", 200*time.Millisecond)
	if n := len(w.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages before 08:30", n)
	}
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, loc))
	for range 3 {
		w.expect("summary", "")
	}
	ivan, team := w.smtpTo(seller), w.smtpTo(boss)
	if len(ivan) != 1 || len(team) != 1 || len(w.smtpTo(maria)) != 1 {
		t.Fatalf("summaries: ivan %d, maria %d, boss %d; want one each", len(ivan), len(w.smtpTo(maria)), len(team))
	}
	for _, m := range append(ivan, team...) {
		r := m.rec
		if !r.IsOwn() || len(r.From) != 1 {
			t.Errorf("summary %q: own %v from %v", r.Subject, r.IsOwn(), r.From)
		}
		if !strings.Contains(string(m.raw), "multipart/alternative") || !strings.Contains(string(m.raw), "text/html") {
			t.Errorf("summary %q is not text + HTML", r.Subject)
		}
	}
	if got := ivan[0].rec.Subject; got != "Follow-ups Tue 24 Nov: 1 waiting" {
		t.Errorf("ivan's subject %q", got)
	}
	if got := team[0].rec.Subject; got != "Team follow-ups Tue 24 Nov: 1 waiting, 1 answer" {
		t.Errorf("team subject %q", got)
	}
	if ivan[0].rec.From[0].Addr != seller || team[0].rec.From[0].Addr != seller {
		t.Errorf("from %v / %v, want the first account", ivan[0].rec.From, team[0].rec.From)
	}
	text := ivan[0].rec.Body
	if !strings.Contains(text, "Коммерческое предложение №5 <срочно>") || strings.Contains(text, "Offer 9") {
		t.Errorf("ivan's summary shows the wrong follow-ups:\n%s", text)
	}
	if !strings.Contains(text, "reminder 1 of 2 Thu 26 Nov 09:00") {
		t.Errorf("ivan's summary lacks the next step:\n%s", text)
	}
	if !strings.Contains(team[0].rec.Body, "Offer 9") {
		t.Errorf("team summary lacks maria's answer:\n%s", team[0].rec.Body)
	}

	// Restarting the same day does not send it twice.
	stop()
	w.advanceTo(time.Date(2026, 11, 24, 9, 0, 0, 0, loc))
	w.run(w.config(summaryConfig, seller, maria))
	w.quiet("summary", 300*time.Millisecond)
	if n := len(w.smtpTo(boss)); n != 1 {
		t.Fatalf("%d team summaries after a restart, want still 1", n)
	}
	// Wednesday's summaries, then Thursday: step 1 goes out at 09:00;
	// Friday's summary lists it. A day at a time: a summary counts for the
	// local day the server took it on, and a clock racing ahead of a send
	// would date Wednesday's on Thursday.
	w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, loc))
	for range 3 {
		w.expect("summary", "")
	}
	w.advanceTo(time.Date(2026, 11, 26, 10, 0, 0, 0, loc))
	w.expect("sent", "offer-s1@seller.test")
	for range 3 {
		w.expect("summary", "")
	}
	w.advanceTo(time.Date(2026, 11, 27, 8, 30, 0, 0, loc))
	for range 3 {
		w.expect("summary", "")
	}
	ivan = w.smtpTo(seller)
	last := ivan[len(ivan)-1].rec.Body
	if !strings.Contains(last, "Follow-ups for Sender, Fri 27 Nov 2026 08:30") || !strings.Contains(last, "REMINDERS SENT SINCE Thu 26 Nov 08:30 (1)") || !strings.Contains(last, "reminder 1 of 2 to anna@client.test") {
		t.Errorf("Friday's summary:\n%s", last)
	}
	// No summary on the weekend: the next is Monday's.
	w.advanceTo(time.Date(2026, 11, 29, 12, 0, 0, 0, loc))
	w.quiet("summary", 200*time.Millisecond)
}

// Summaries renders without sending: what `followupd summary -print` uses.
func TestSummariesRender(t *testing.T) {
	start := monday(t)
	w := newWorld(t, start, seller, client)
	cfg := w.config(summaryConfig, seller)
	d, _ := w.run(cfg)
	w.sendOffer(seller, client, "offer-r1@seller.test", "Коммерческое предложение: счёт №12", start.Add(-time.Hour))
	w.expect("tracked", "offer-r1@seller.test")
	ms, err := daemon.Summaries(cfg, d.Store(), w.clk.Now(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Team || !ms[1].Team || ms[1].To[0].Addr != boss || ms[0].To[0].Addr != seller {
		t.Fatalf("summaries: %+v", ms)
	}
	if !strings.Contains(ms[0].HTML, "Коммерческое предложение: счёт №12") || !strings.Contains(ms[0].Text, "WAITING FOR AN ANSWER (1") {
		t.Errorf("rendered:\n%s", ms[0].Text)
	}
	if len(w.smtp.Messages()) != 0 {
		t.Error("Summaries sent mail")
	}
}
