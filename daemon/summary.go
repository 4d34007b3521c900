package daemon

// The daily summary and approval mode's housekeeping: one goroutine
// (housekeep) that sends the summaries at [summary] time on business days,
// checks every hour whether drafted reminders were sent or deleted, and
// sends the approval notices ("3 reminders are waiting in Drafts"), at most
// one per hour per account.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/calendar"
	"followupd/config"
	"followupd/imapwatch"
	"followupd/message"
	"followupd/send"
	"followupd/store"
	"followupd/summary"
)

// Housekeeping timings.
const (
	// draftCheckEvery is how often drafted reminders are looked up in
	// Drafts (and at each summary).
	draftCheckEvery = time.Hour
	// draftGoneConfirm: a draft missing from Drafts and Sent is skipped
	// only when it is still missing this long after it was first missed,
	// so a client that deletes the draft before it files the sent copy
	// is not mistaken for a deletion.
	draftGoneConfirm = 10 * time.Minute
	// noticeBatch is how long a first draft waits for the rest of its
	// batch before the notice goes out; noticeEvery paces notices.
	noticeBatch = 2 * time.Minute
	noticeEvery = time.Hour
	// summaryKeep: terminal follow-ups older than this are left out of
	// the summary's data (conversion looks back 30 days).
	summaryKeep = 32 * 24 * time.Hour
)

// Meta keys.
const (
	metaSummaryLast = "summary/last" // RFC 3339 time of the last daily summary
	metaNoticePfx   = "notice/"      // + account: RFC 3339 time of its last approval notice
)

// housekeeper is the state of the housekeeping goroutine that other
// goroutines touch: the kick channel and the notice plan.
type housekeeper struct {
	kick chan struct{} // capacity 1: wake the loop (a draft was made)

	mu       sync.Mutex
	noticeAt map[string]time.Time // account -> when its pending notice goes out
	missing  map[uint64]time.Time // draft follow-up -> first time it was missed in Drafts
}

func newHousekeeper() *housekeeper {
	return &housekeeper{kick: make(chan struct{}, 1), noticeAt: map[string]time.Time{}, missing: map[uint64]time.Time{}}
}

func (h *housekeeper) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// draftNoted plans account's approval notice after a new draft: after a
// short batching delay, and not within noticeEvery of the previous one.
func (d *Daemon) draftNoted(account string) {
	h := d.house
	if h == nil {
		return
	}
	now := d.clk.Now()
	at := now.Add(noticeBatch)
	if last, ok := d.metaTime(metaNoticePfx + account); ok && last.Add(noticeEvery).After(at) {
		at = last.Add(noticeEvery)
	}
	h.mu.Lock()
	if _, planned := h.noticeAt[account]; !planned {
		h.noticeAt[account] = at
	}
	h.mu.Unlock()
	h.wake()
}

func (d *Daemon) metaTime(key string) (time.Time, bool) {
	v, err := d.db.Meta(key)
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	return t, err == nil
}

func (d *Daemon) putMetaTime(key string, t time.Time) {
	if err := d.db.PutMeta(key, []byte(t.UTC().Format(time.RFC3339Nano))); err != nil {
		d.log.Error("recording "+key, "err", err)
	}
}

// summaryCalendar is the business-day calendar of the top-level settings,
// which decides the days a summary goes out.
func summaryCalendar(cfg *config.Config) (*calendar.Calendar, error) {
	var holidays, workdays []calendar.Day
	for _, h := range cfg.Holidays {
		holidays = append(holidays, calendar.Day{Year: h.Year, Month: h.Month, Day: h.Day})
	}
	for _, w := range cfg.Workdays {
		workdays = append(workdays, calendar.Day{Year: w.Year, Month: w.Month, Day: w.Day})
	}
	return calendar.New(cfg.Location(nil), cfg.CalendarCode(nil), holidays, workdays, calendar.Window{})
}

// summarySlot returns the first summary time after `after` on a business
// day, in the top-level zone.
func summarySlot(cfg *config.Config, cal *calendar.Calendar, after time.Time) time.Time {
	loc := cfg.Location(nil)
	at := int(config.DefaultSummaryTime)
	if cfg.SummaryMail.Time != nil {
		at = int(*cfg.SummaryMail.Time)
	}
	t := after.In(loc)
	for i := 0; i < 400; i++ {
		day := t.AddDate(0, 0, i)
		slot := time.Date(day.Year(), day.Month(), day.Day(), at/60, at%60, 0, 0, loc)
		if slot.After(after) && cal.IsBusinessDay(slot) {
			return slot
		}
	}
	return after.Add(24 * time.Hour) // a calendar without business days
}

// nextSummary is when the daily summary goes out next: today's slot when
// it has passed but no summary was sent since (a late start catches up
// once, the same day), else the next slot.
func (d *Daemon) nextSummary(cfg *config.Config, cal *calendar.Calendar, now time.Time) time.Time {
	last, ok := d.metaTime(metaSummaryLast)
	if ok {
		loc := cfg.Location(nil)
		y, m, dd := now.In(loc).Date()
		today := summarySlot(cfg, cal, time.Date(y, m, dd, 0, 0, 0, 0, loc).Add(-time.Nanosecond))
		if sameDay(today, now, loc) && !today.After(now) && last.Before(today) {
			return now
		}
	}
	return summarySlot(cfg, cal, now)
}

func sameDay(a, b time.Time, loc *time.Location) bool {
	y1, m1, d1 := a.In(loc).Date()
	y2, m2, d2 := b.In(loc).Date()
	return y1 == y2 && m1 == m2 && d1 == d2
}

// housekeep is the housekeeping goroutine. It starts once every account
// has synced (so the first summary and draft check see the mailboxes as
// they are) and stops when ctx ends; io is the context of its network
// calls (cancelled later, so a summary being sent may finish).
func (d *Daemon) housekeep(ctx, io context.Context) {
	select {
	case <-d.ready:
	case <-ctx.Done():
		return
	}
	h := d.house
	nextDrafts := d.clk.Now()
	// summaryAt is planned once per configuration and after each send:
	// recomputing it on every wake-up would skip the slot that just came.
	var summaryAt time.Time
	var planned *config.Config
	for {
		cur := d.current()
		cfg := cur.cfg
		now := d.clk.Now()
		next := nextDrafts
		if cfg != planned {
			planned, summaryAt = cfg, time.Time{}
			if cfg.SummaryMail.Enabled {
				if cal, err := summaryCalendar(cfg); err != nil {
					d.log.Error("summary calendar", "err", err)
				} else {
					summaryAt = d.nextSummary(cfg, cal, now)
					d.log.Info("daily summary planned", "at", summaryAt)
				}
			}
		}
		if !summaryAt.IsZero() {
			next = minTime(next, summaryAt)
		}
		h.mu.Lock()
		for _, at := range h.noticeAt {
			next = minTime(next, at)
		}
		h.mu.Unlock()

		if wait := next.Sub(now); wait > 0 {
			d.live.mu.RLock()
			changed := d.live.changed
			d.live.mu.RUnlock()
			t := d.clk.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			case <-h.kick:
				t.Stop()
			case <-changed:
				t.Stop()
			}
			continue // recompute: the kick or reload may change the plan
		}

		if !now.Before(nextDrafts) {
			retry := cur.checkAllDrafts(io)
			nextDrafts = now.Add(draftCheckEvery)
			if retry {
				nextDrafts = now.Add(draftGoneConfirm)
			}
		}
		h.mu.Lock()
		var due []string
		for acct, at := range h.noticeAt {
			if !now.Before(at) {
				due = append(due, acct)
				delete(h.noticeAt, acct)
			}
		}
		h.mu.Unlock()
		slices.Sort(due)
		for _, acct := range due {
			if a := cur.accounts[acct]; a != nil {
				cur.sendNotice(io, a)
			}
		}
		if !summaryAt.IsZero() && !now.Before(summaryAt) {
			// Settle drafts first, so the summary lists what really waits.
			cur.checkAllDrafts(io)
			if err := cur.SendSummaries(io); err != nil {
				d.log.Error("sending daily summary", "err", err)
			}
			// The slot, not the send time: the next summary's "since" is
			// this slot, whatever delayed the send.
			d.putMetaTime(metaSummaryLast, minTime(summaryAt, now))
			if cal, err := summaryCalendar(cfg); err == nil {
				summaryAt = summarySlot(cfg, cal, now)
			} else {
				summaryAt = time.Time{}
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// SummaryMail is one rendered daily summary and who gets it.
type SummaryMail struct {
	Account string // the account whose SMTP and address send it
	From    message.Address
	To      []message.Address
	Team    bool
	*summary.Output
}

// Summaries renders the day's summaries at now from the store: one per
// account (unless [summary] senders = false), and the team's when leads
// are configured. since starts "the last day" (zero: 24 hours ago). It
// does no network I/O, so `followupd summary -print` can use it.
func Summaries(cfg *config.Config, db *store.DB, now, since time.Time) ([]SummaryMail, error) {
	all, err := db.List(store.Filter{})
	if err != nil {
		return nil, fmt.Errorf("summary: listing follow-ups: %w", err)
	}
	var fs []*store.FollowUp
	for _, f := range all {
		if f.State.Terminal() && f.State != store.StateUncertain && len(f.History) > 0 && now.Sub(f.History[len(f.History)-1].At) > summaryKeep {
			continue
		}
		fs = append(fs, f)
	}
	senders := map[string]string{}
	for _, a := range cfg.Accounts {
		name := a.DisplayName
		if name == "" {
			name = a.Address
		}
		senders[a.Name] = name
	}
	steps := map[string]int{}
	for _, r := range cfg.Rules {
		steps[r.Name] = len(r.Steps)
	}
	from := func(a *config.Account) message.Address {
		return message.Address{Name: "followupd", Addr: a.Address}
	}
	var out []SummaryMail
	if cfg.SummaryMail.Senders == nil || *cfg.SummaryMail.Senders {
		for i := range cfg.Accounts {
			a := &cfg.Accounts[i]
			var own []*store.FollowUp
			for _, f := range fs {
				if f.Account == a.Name {
					own = append(own, f)
				}
			}
			o, err := summary.Render(summary.Data{Title: senders[a.Name], Senders: senders, Steps: steps, FollowUps: own, Since: since}, now, cfg.Location(a))
			if err != nil {
				return nil, err
			}
			out = append(out, SummaryMail{Account: a.Name, From: from(a), To: []message.Address{{Name: a.DisplayName, Addr: a.Address}}, Output: o})
		}
	}
	if len(cfg.SummaryMail.Leads) > 0 {
		a := cfg.SummaryAccount()
		if a == nil {
			return out, errors.New("summary: no account to send the team summary from")
		}
		o, err := summary.Render(summary.Data{Title: "Sales team", Team: true, Senders: senders, Steps: steps, FollowUps: fs, Since: since}, now, cfg.Location(nil))
		if err != nil {
			return nil, err
		}
		var to []message.Address
		for _, l := range cfg.SummaryMail.Leads {
			to = append(to, message.Address{Addr: l})
		}
		out = append(out, SummaryMail{Account: a.Name, From: from(a), To: to, Team: true, Output: o})
	}
	return out, nil
}

// SendSummaries renders and sends the summaries now, through each
// account's SMTP. A failure of one does not stop the others; the errors
// are joined.
func (d *Daemon) SendSummaries(ctx context.Context) error {
	cur := d.current()
	now := d.clk.Now()
	mails, err := Summaries(cur.cfg, d.db, now, LastSummary(d.db))
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mails {
		a := cur.accounts[m.Account]
		if a == nil {
			errs = append(errs, fmt.Errorf("summary: account %s not running", m.Account))
			continue
		}
		msg := &send.Message{
			From: m.From, To: m.To, Subject: m.Subject, Date: now, Text: m.Text, HTML: m.HTML, Kind: "summary",
			MessageID: message.NewOwnMessageID(domainOf(a.cfg.Address), 0, 0),
		}
		if err := d.submitOwn(ctx, a, msg); err != nil {
			errs = append(errs, fmt.Errorf("summary to %s: %w", addrs(m.To), err))
			continue
		}
		d.log.Info("daily summary sent", "account", a.cfg.Name, "to", addrs(m.To), "team", m.Team, "subject", m.Subject)
		d.emit(Event{Account: a.cfg.Name, Kind: "summary", Text: fmt.Sprintf("summary to %s: %s", addrs(m.To), m.Subject)})
	}
	return errors.Join(errs...)
}

// submitOwn builds and submits one of followupd's own messages (never in
// dry-run: an account in dry-run mode still gets its summary and notices,
// which go to its own people, never to clients).
func (d *Daemon) submitOwn(ctx context.Context, a *account, m *send.Message) error {
	raw, err := send.BuildMessage(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return a.sub.SubmitMessage(ctx, m, raw)
}

// sendNotice tells the account's sender how many reminders wait in Drafts.
func (d *Daemon) sendNotice(ctx context.Context, a *account) {
	fs, err := d.db.InState(store.StateDraft)
	if err != nil {
		d.log.Error("listing drafts for the notice", "account", a.cfg.Name, "err", err)
		return
	}
	var drafts []*store.FollowUp
	for _, f := range fs {
		if f.Account == a.cfg.Name {
			drafts = append(drafts, f)
		}
	}
	if len(drafts) == 0 {
		return // all handled before the notice went out
	}
	now := d.clk.Now()
	last, _ := d.metaTime(metaNoticePfx + a.cfg.Name)
	fresh := 0
	loc := a.cal.Location()
	var b strings.Builder
	subject := fmt.Sprintf("%d reminders are waiting in Drafts", len(drafts))
	if len(drafts) == 1 {
		subject = "1 reminder is waiting in Drafts"
	}
	fmt.Fprintf(&b, "%s, ready to send as replies in their threads.\n\n", subject)
	b.WriteString("Open your Drafts folder and send each one as it is, or edit it first. Delete a draft to skip\nthat reminder; the next step (if any) is then planned as usual. Unsent drafts are listed\nin your daily summary.\n\n")
	for _, f := range drafts {
		at := f.History[len(f.History)-1].At
		mark := " "
		if at.After(last) {
			fresh++
			mark = "*"
		}
		to := ""
		if len(f.To) > 0 {
			to = f.To[0].Addr
		}
		fmt.Fprintf(&b, "%s %s  reminder %d to %s: %s\n", mark, at.In(loc).Format("Mon 02 Jan 15:04"), f.Step, to, f.Subject)
	}
	if fresh > 0 && fresh < len(drafts) {
		fmt.Fprintf(&b, "\n* new since the last notice (%d)\n", fresh)
	}
	b.WriteString("\n-- \nfollowupd, approval mode\n")
	msg := &send.Message{
		From: message.Address{Name: "followupd", Addr: a.cfg.Address}, To: []message.Address{{Name: a.cfg.DisplayName, Addr: a.cfg.Address}},
		Subject: subject, Date: now, Text: b.String(), Kind: "approval-notice",
		MessageID: message.NewOwnMessageID(domainOf(a.cfg.Address), 0, 0),
	}
	if err := d.submitOwn(ctx, a, msg); err != nil {
		d.log.Warn("sending approval notice; retrying in an hour", "account", a.cfg.Name, "err", err)
	} else {
		d.log.Info("approval notice sent", "account", a.cfg.Name, "drafts", len(drafts))
		d.emit(Event{Account: a.cfg.Name, Kind: "notice", Text: subject})
	}
	// Paced either way: a failing server does not get a notice a minute.
	d.putMetaTime(metaNoticePfx+a.cfg.Name, now)
}

// checkAllDrafts settles every account's drafted reminders; it reports
// whether a draft was missed and needs the confirming re-check.
func (d *Daemon) checkAllDrafts(ctx context.Context) bool {
	fs, err := d.db.InState(store.StateDraft)
	if err != nil {
		d.log.Error("listing drafts", "err", err)
		return false
	}
	byAcct := map[string][]*store.FollowUp{}
	for _, f := range fs {
		byAcct[f.Account] = append(byAcct[f.Account], f)
	}
	retry := false
	names := make([]string, 0, len(byAcct))
	for n := range byAcct {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		a := d.accounts[n]
		if a == nil {
			continue
		}
		r, err := d.checkDrafts(ctx, a, byAcct[n])
		if err != nil {
			d.log.Warn("checking drafts", "account", n, "err", err)
		}
		retry = retry || r
	}
	return retry
}

// checkDrafts looks up each drafted reminder of a: still in Drafts ->
// nothing; in Sent (our Message-ID) -> the sender sent it (draft-sent);
// neither, and no unprocessed message in Sent cites the thread -> missed;
// missed again draftGoneConfirm later -> the sender deleted it, the step
// is skipped (draft-gone).
func (d *Daemon) checkDrafts(ctx context.Context, a *account, drafts []*store.FollowUp) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		var err error
		retry, err = d.checkDraftsOn(ctx, c, a, drafts)
		return err
	})
	return retry, err
}

// checkDraftsOn is checkDrafts on an open connection.
func (d *Daemon) checkDraftsOn(ctx context.Context, c *imapclient.Client, a *account, drafts []*store.FollowUp) (retry bool, err error) {
	sentBox, draftsBox, err := d.folders(ctx, c, a)
	if err != nil {
		return false, err
	}
	if draftsBox == "" {
		return false, errNoFolder(a, "Drafts")
	}
	h := d.house
	for _, f := range drafts {
		log := d.log.With("account", a.cfg.Name, "id", f.ID, "msgid", f.MessageID, "step", f.Step)
		in, err := imapwatch.FindMessageID(ctx, c, draftsBox, f.SendID)
		if err != nil {
			return retry, err
		}
		if in {
			h.mu.Lock()
			delete(h.missing, f.ID)
			h.mu.Unlock()
			continue
		}
		if sentBox != "" {
			sent, err := imapwatch.FindMessageID(ctx, c, sentBox, f.SendID)
			if err != nil {
				return retry, err
			}
			if sent {
				// The watcher may not have seen it yet; the same transition.
				if err := d.ownCopySeen(a, &message.Record{MessageID: f.SendID}); err != nil {
					return retry, err
				}
				continue
			}
			// An edited draft sent under another Message-ID, not yet
			// processed by the watcher: wait for it.
			uids, err := imapwatch.SearchReplies(ctx, c, sentBox, append([]string{f.MessageID}, f.Sent...))
			if err != nil {
				return retry, err
			}
			st, err := d.db.SyncState(a.cfg.Name, sentBox)
			if err != nil {
				return retry, err
			}
			if slices.ContainsFunc(uids, func(u uint32) bool { return u > st.LastUID }) {
				log.Info("draft gone from Drafts; an unprocessed message in Sent cites the thread, waiting for it")
				retry = true
				continue
			}
		}
		now := d.clk.Now()
		h.mu.Lock()
		first, seen := h.missing[f.ID]
		if !seen {
			h.missing[f.ID] = now
		}
		h.mu.Unlock()
		if !seen || now.Sub(first) < draftGoneConfirm {
			log.Info("drafted reminder not in Drafts; confirming on the next check")
			retry = true
			continue
		}
		d.draftGone(a, f, now)
		h.mu.Lock()
		delete(h.missing, f.ID)
		h.mu.Unlock()
	}
	return retry, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// draftGone records that the sender deleted a drafted reminder: the step
// is skipped and the chain moves on (next step, or finished).
func (d *Daemon) draftGone(a *account, f *store.FollowUp, now time.Time) {
	sendID := f.SendID
	nf, err := d.db.Transition(f.ID, store.EvDraftGone, now, "draft "+sendID+" deleted by the sender: step skipped", func(f *store.FollowUp) error {
		if f.State != store.StateDraft || f.SendID != sendID {
			return store.ErrNoChange
		}
		f.SendID = "" // never sent: not one of the thread's reminders
		return d.advance(a, f, now)
	})
	if errors.Is(err, store.ErrNoChange) || isBadTransition(err) {
		return
	}
	if err != nil {
		d.log.Error("recording deleted draft", "account", a.cfg.Name, "id", f.ID, "err", err)
		return
	}
	d.log.Info("draft deleted by the sender; step skipped", "account", a.cfg.Name, "id", f.ID, "step", f.Step, "next", nf.State)
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "skipped", Step: f.Step,
		Text: fmt.Sprintf("draft of reminder %d for %q deleted by the sender: skipped", f.Step, nf.Subject)})
	d.reschedule(nf)
}

// LastSummary is the slot of the last daily summary the daemon sent (zero:
// none yet): the start of the next summary's "last day".
func LastSummary(db *store.DB) time.Time {
	v, err := db.Meta(metaSummaryLast)
	if err != nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(v))
	return t
}
