package summary

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"followupd/message"
	"followupd/store"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// moscow is the zone of the seeded team.
func moscow(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// summaryNow is Tuesday 24 Nov 2026, 08:30 Moscow time.
func summaryNow(loc *time.Location) time.Time { return time.Date(2026, 11, 24, 8, 30, 0, 0, loc) }

var senders = map[string]string{"ivan": "Иван Петров", "maria": "Maria Sidorova"}

var rcpts = []message.Address{
	{Name: "Anna Smirnova", Addr: "anna@client.example"},
	{Name: "Борис Ковалёв", Addr: "boris@stroy.example"},
	{Addr: "procurement@globex.example"},
	{Name: "Олег Никитин", Addr: "oleg@neft.example"},
	{Name: "Claire Dubois", Addr: "claire@initech.example"},
}

// seeded builds a fixed team history: ~40 follow-ups over five weeks with
// histories as the daemon writes them, then a few hand-made cases (a
// bounce, a failure, an uncertain step, drafts, a hold, a dry-run, a
// subject that must be escaped).
func seeded(loc *time.Location) []*store.FollowUp {
	now := summaryNow(loc)
	rng := rand.New(rand.NewPCG(2026, 11))
	var out []*store.FollowUp
	id := uint64(0)
	newFU := func(account, rule string, sent time.Time) *store.FollowUp {
		id++
		to := rcpts[rng.IntN(len(rcpts))]
		f := &store.FollowUp{ID: id, Account: account, Rule: rule, Kind: rule, MessageID: fmt.Sprintf("m%d@seller.example", id),
			To: []message.Address{to}, SentAt: sent, LastSent: sent, Step: 1, State: store.StateWaiting, Vars: map[string]string{}}
		n := 100 + rng.IntN(900)
		switch rule {
		case "invoice":
			f.Subject = []string{"Счёт №%d от 03.11.2026", "Invoice %d: November deliveries"}[rng.IntN(2)]
			f.Subject = fmt.Sprintf(f.Subject, n)
			f.Vars["amount"] = fmt.Sprintf("%d %03d ₽", 10+rng.IntN(400), rng.IntN(1000))
		default:
			f.Subject = fmt.Sprintf([]string{"Коммерческое предложение №%d на поставку задвижек", "КП №%d: монтаж вентиляции", "Offer %d: maintenance contract 2027", "Quote #%d for 40 valves"}[rng.IntN(4)], n)
		}
		f.History = []store.HistoryEntry{{At: sent, Event: store.EvTrack, To: store.StateWaiting, Step: 1, Reason: "tracked by rule " + rule}}
		return f
	}
	add := func(f *store.FollowUp, at time.Time, ev store.Event, to store.State, reason string) {
		f.History = append(f.History, store.HistoryEntry{At: at, Event: ev, From: f.State, To: to, Step: f.Step, Reason: reason})
		f.State = to
	}
	for range 40 {
		account := []string{"ivan", "maria"}[rng.IntN(2)]
		rule := []string{"offer", "offer", "invoice"}[rng.IntN(3)]
		sent := office(now.Add(-time.Duration(rng.IntN(34*24)+1)*time.Hour), rng)
		f := newFU(account, rule, sent)
		t := sent
		answerAt := func(after time.Time) time.Time {
			return office(after.Add(time.Duration(2+rng.IntN(60))*time.Hour), rng)
		}
		done := false
		if rng.IntN(4) == 0 { // answered before any reminder
			if at := answerAt(t); at.Before(now) {
				add(f, at, store.EvAnswer, store.StateAnswered, "answered by "+f.To[0].Addr+" (in thread) <r@x>")
				f.AnsweredAt = at
				done = true
			}
		}
		for step := 1; step <= 2 && !done; step++ {
			due := addWeekdays(t, 3)
			if step == 2 {
				due = addWeekdays(t, 5)
			}
			f.Due = due
			if due.After(now) {
				done = true
				break
			}
			add(f, due, store.EvDue, store.StateSending, fmt.Sprintf("step %d due (auto)", step))
			next := store.StateWaiting
			if step == 2 {
				next = store.StateFinished
			}
			add(f, due.Add(time.Minute), store.EvSent, next, fmt.Sprintf("step %d sent", step))
			f.Sent = append(f.Sent, fmt.Sprintf("followupd.%d.%d.x@seller.example", f.ID, step))
			f.Step++
			t = due
			if rng.IntN(3) == 0 {
				if at := answerAt(t); at.Before(now) {
					add(f, at, store.EvAnswer, store.StateAnswered, "answered by "+f.To[0].Addr+" (in thread) <r@x>")
					f.AnsweredAt = at
					done = true
				}
			}
		}
		if f.State != store.StateWaiting {
			f.Due = time.Time{}
		}
		out = append(out, f)
	}

	// Hand-made cases, at fixed November times.
	at := func(day, h, m int) time.Time { return time.Date(2026, 11, day, h, m, 0, 0, loc) }
	f := newFU("ivan", "offer", now.Add(-4*24*time.Hour))
	f.Subject = "КП №77 <script>alert(1)</script> & «скидки»"
	f.Due = now.Add(5 * time.Hour)
	out = append(out, f)

	f = newFU("maria", "offer", now.Add(-6*24*time.Hour))
	f.Subject = "Offer 12: spare parts"
	add(f, at(23, 12, 40), store.EvBounce, store.StateBounced, "bounce: claire@initech.example: 550 5.1.1 user unknown")
	f.Outcome = "claire@initech.example: 550 5.1.1 user unknown"
	out = append(out, f)

	f = newFU("ivan", "invoice", now.Add(-9*24*time.Hour))
	add(f, at(20, 10, 1), store.EvDue, store.StateSending, "step 1 due (auto)")
	add(f, at(20, 10, 2), store.EvPermFail, store.StateFailed, "SMTP 554 message rejected as spam")
	f.Outcome = "SMTP 554 message rejected as spam"
	out = append(out, f)

	f = newFU("maria", "offer", now.Add(-5*24*time.Hour))
	add(f, at(23, 10, 15), store.EvDue, store.StateSending, "step 1 due (auto)")
	add(f, at(23, 10, 16), store.EvUncertain, store.StateUncertain, "restart: step 1 was being sent")
	f.SendID = "followupd.99.1.x@seller.example"
	out = append(out, f)

	for i, days := range []int{1, 3} {
		f = newFU([]string{"maria", "ivan"}[i], "offer", now.Add(-time.Duration(days+3)*24*time.Hour))
		at := at(24-days-[]int{0, 1}[i], 10, 0)
		add(f, at, store.EvDue, store.StateSending, "step 1 due (approve)")
		add(f, at.Add(time.Minute), store.EvDrafted, store.StateDraft, "reminder placed in Drafts for approval")
		f.SendID = fmt.Sprintf("followupd.%d.1.x@seller.example", f.ID)
		out = append(out, f)
	}

	f = newFU("ivan", "offer", now.Add(-3*24*time.Hour-time.Hour))
	f.Subject = "Коммерческое предложение: котельная, Тверь"
	add(f, at(23, 17, 27), store.EvAway, store.StateHeld, "auto-reply: away until 2026-11-30")
	f.HeldUntil = time.Date(2026, 11, 30, 9, 0, 0, 0, loc)
	f.Due = f.HeldUntil
	out = append(out, f)

	f = newFU("maria", "invoice", now.Add(-3*24*time.Hour-2*time.Hour))
	add(f, at(23, 15, 0), store.EvDue, store.StateSending, "step 1 due (dry-run)")
	add(f, at(23, 15, 0), store.EvSent, store.StateWaiting, "dry-run: recorded, not sent")
	f.Step = 2
	f.Due = at(30, 15, 0)
	out = append(out, f)
	return out
}

// office moves t into working hours (09:00-18:59 on a weekday), as a
// sales team's mail and a send window would place it.
func office(t time.Time, rng *rand.Rand) time.Time {
	if t.Hour() < 9 || t.Hour() >= 19 {
		if t.Hour() >= 19 {
			t = t.AddDate(0, 0, 1)
		}
		t = time.Date(t.Year(), t.Month(), t.Day(), 9+rng.IntN(3), rng.IntN(60), 0, 0, t.Location())
	}
	for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		t = t.AddDate(0, 0, 1)
	}
	return t.Truncate(time.Minute)
}

func addWeekdays(t time.Time, n int) time.Time {
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if t.Weekday() != time.Saturday && t.Weekday() != time.Sunday {
			n--
		}
	}
	return t
}

func steps() map[string]int { return map[string]int{"offer": 2, "invoice": 2} }

func only(fs []*store.FollowUp, account string) []*store.FollowUp {
	var out []*store.FollowUp
	for _, f := range fs {
		if f.Account == account {
			out = append(out, f)
		}
	}
	return out
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./summary -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./summary -update rewrites it); got:\n%s", path, got)
	}
}

func TestGolden(t *testing.T) {
	loc := moscow(t)
	now := summaryNow(loc)
	fs := seeded(loc)
	for _, tc := range []struct {
		name string
		data Data
	}{
		{"team", Data{Title: "Sales team", Team: true, Senders: senders, Steps: steps(), FollowUps: fs, Since: now.Add(-24 * time.Hour)}},
		{"ivan", Data{Title: senders["ivan"], Senders: senders, Steps: steps(), FollowUps: only(fs, "ivan"), Since: now.Add(-24 * time.Hour)}},
		// Monday's summary covers the weekend: Since is Friday's.
		{"maria-monday", Data{Title: senders["maria"], Senders: senders, Steps: steps(), FollowUps: only(fs, "maria"), Since: now.Add(-4 * 24 * time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.data, now, loc)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".txt", "Subject: "+out.Subject+"\n\n"+out.Text)
			golden(t, tc.name+".html", out.HTML)
		})
	}
}

func TestEscaping(t *testing.T) {
	loc := moscow(t)
	out, err := Render(Data{Title: "Иван <b>", Senders: senders, Steps: steps(), FollowUps: seeded(loc)}, summaryNow(loc), loc)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "Иван <b>", "& «"} {
		if strings.Contains(out.HTML, bad) {
			t.Errorf("HTML holds unescaped %q", bad)
		}
	}
	for _, good := range []string{"&lt;script&gt;alert(1)&lt;/script&gt; &amp; «скидки»", "Иван &lt;b&gt;"} {
		if !strings.Contains(out.HTML, good) {
			t.Errorf("HTML lacks escaped %q", good)
		}
	}
	if !strings.Contains(out.Text, "<script>alert(1)</script>") {
		t.Error("text body should show the subject as written")
	}
}

// A small hand-counted history: the numbers each section shows.
func TestCompute(t *testing.T) {
	loc := moscow(t)
	now := summaryNow(loc)
	h := func(ago time.Duration, ev store.Event, to store.State, step int, reason string) store.HistoryEntry {
		return store.HistoryEntry{At: now.Add(-ago), Event: ev, To: to, Step: step, Reason: reason}
	}
	day := 24 * time.Hour
	fs := []*store.FollowUp{
		// Reminded 10 days ago, answered 9 days ago: converts in 30 days, not in 7.
		{ID: 1, Account: "ivan", Rule: "offer", SentAt: now.Add(-14 * day), State: store.StateAnswered, History: []store.HistoryEntry{
			h(14*day, store.EvTrack, store.StateWaiting, 1, ""), h(10*day, store.EvSent, store.StateWaiting, 1, "step 1 sent"),
			h(9*day, store.EvAnswer, store.StateAnswered, 2, "answered by a@b.c (in thread) <x>")}},
		// Reminded 2 days ago and answered yesterday evening: converts in both; an answer of the last day.
		{ID: 2, Account: "ivan", Rule: "invoice", SentAt: now.Add(-6 * day), State: store.StateAnswered, History: []store.HistoryEntry{
			h(6*day, store.EvTrack, store.StateWaiting, 1, ""), h(2*day, store.EvDraftSent, store.StateWaiting, 1, "own copy found in Sent"),
			h(10*time.Hour, store.EvAnswer, store.StateAnswered, 2, "answered by boss@client.example (colleague) <y>")}},
		// Answered without a reminder: not reminded, an answer of the last day.
		{ID: 3, Account: "maria", Rule: "offer", SentAt: now.Add(-2 * day), State: store.StateAnswered, History: []store.HistoryEntry{
			h(2*day, store.EvTrack, store.StateWaiting, 1, ""), h(3*time.Hour, store.EvAnswer, store.StateAnswered, 1, "answered by c@d.e (in thread) <z>")}},
		// Reminded yesterday (a reminder of the last day), still waiting for step 2.
		{ID: 4, Account: "maria", Rule: "offer", SentAt: now.Add(-4 * day), State: store.StateWaiting, Step: 2, Due: now.Add(-time.Hour), History: []store.HistoryEntry{
			h(4*day, store.EvTrack, store.StateWaiting, 1, ""), h(20*time.Hour, store.EvSent, store.StateWaiting, 1, "step 1 sent")}},
		// Dry-run: listed, never counted as reminded.
		{ID: 5, Account: "maria", Rule: "offer", SentAt: now.Add(-3 * day), State: store.StateWaiting, Step: 2, Due: now.Add(day), History: []store.HistoryEntry{
			h(3*day, store.EvTrack, store.StateWaiting, 1, ""), h(time.Hour, store.EvSent, store.StateWaiting, 1, "dry-run: recorded, not sent")}},
		// An old bounce is no longer news; an old uncertain step still is.
		{ID: 6, Account: "ivan", Rule: "offer", SentAt: now.Add(-20 * day), State: store.StateBounced, History: []store.HistoryEntry{
			h(20*day, store.EvTrack, store.StateWaiting, 1, ""), h(8*day, store.EvBounce, store.StateBounced, 1, "bounce")}},
		{ID: 7, Account: "ivan", Rule: "offer", SentAt: now.Add(-20 * day), State: store.StateUncertain, Step: 1, History: []store.HistoryEntry{
			h(20*day, store.EvTrack, store.StateWaiting, 1, ""), h(15*day, store.EvUncertain, store.StateUncertain, 1, "restart")}},
	}
	r := Compute(Data{Title: "t", Team: true, FollowUps: fs}, now, loc)
	check := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", what, got, want)
		}
	}
	check("waiting", len(r.Waiting), 2)
	check("waiting due now", r.WaitingOverdue, 1)
	check("sent in the last day", len(r.Sent), 2) // #4 and the dry-run #5
	check("real sent", countReal(r.Sent), 1)
	check("answers in the last day", len(r.Answered), 2)
	check("answers after a reminder", r.AfterReminder, 1)
	check("needs", len(r.Needs), 1)
	check("reminded 7d", r.Total.Reminded7, 2)
	check("answered 7d", r.Total.Answered7, 1)
	check("reminded 30d", r.Total.Reminded30, 3)
	check("answered 30d", r.Total.Answered30, 2)
	check("rate 30d", r.Total.Rate30(), 67)
	check("senders", len(r.BySender), 2)
	check("rules", len(r.ByRule), 2)
	if r.Answered[0].Note != "boss@client.example" {
		t.Errorf("answered by %q", r.Answered[0].Note)
	}
	// Chart: today is the last column; yesterday holds #4's reminder and #2's answer.
	last := r.Chart[ChartDays-1]
	if !last.Date.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, loc)) {
		t.Errorf("last chart day %s", last.Date)
	}
	y := r.Chart[ChartDays-2]
	check("yesterday reminders", y.Reminders, 1)
	check("yesterday answers", y.Answers, 1)
	check("today answers", last.Answers, 1)
	sum := 0
	for _, d := range r.Chart {
		sum += d.Reminders
	}
	check("reminders in 14 days", sum, 3)
}

func TestEmpty(t *testing.T) {
	loc := moscow(t)
	out, err := Render(Data{Title: "Nobody"}, summaryNow(loc), loc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Text, "nothing is waiting") || !strings.Contains(out.HTML, "Nothing is waiting.") {
		t.Errorf("empty summary:\n%s", out.Text)
	}
	if out.Subject != "Follow-ups Tue 24 Nov: 0 waiting" {
		t.Errorf("subject %q", out.Subject)
	}
}
