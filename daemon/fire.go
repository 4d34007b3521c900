package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/config"
	"followupd/imapwatch"
	"followupd/message"
	"followupd/send"
	"followupd/store"
)

// fire runs on the scheduler goroutine: it only routes the due follow-up
// to its account's sender goroutine, so one slow SMTP server never delays
// another account's steps.
func (d *Daemon) fire(ctx context.Context, id uint64, due time.Time) {
	d = d.current()
	f, err := d.db.Get(id)
	if err != nil {
		d.log.Error("loading due follow-up", "id", id, "err", err)
		return
	}
	a := d.accounts[f.Account]
	if a == nil {
		d.log.Warn("due follow-up of an account no longer configured", "id", id, "account", f.Account)
		return
	}
	select {
	case a.queue <- id:
	default:
		d.sched.Set(id, d.clk.Now().Add(time.Minute)) // queue full: come back later
	}
}

// senderLoop is the one goroutine that sends for an account.
func (d *Daemon) senderLoop(ctx context.Context, a *account) {
	// Steps wait for the account's first sync (and in-flight recovery), so a
	// reply that arrived during downtime is seen before anything is sent.
	select {
	case <-a.synced:
	case <-a.quit:
		return
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.quit: // shutdown or reload: stop between steps
			return
		case id := <-a.queue:
			d.current().step(ctx, a, id)
		}
	}
}

// step decides, for one due follow-up, to send now, later, or never.
func (d *Daemon) step(ctx context.Context, a *account, id uint64) {
	now := d.clk.Now()
	f, err := d.db.Get(id)
	if err != nil {
		// A transient store error must not drop the step from the wheel.
		d.log.Error("loading due follow-up; retrying", "id", id, "err", err)
		d.sched.Set(id, now.Add(d.opt.RetryBase))
		return
	}
	log := d.log.With("account", a.cfg.Name, "id", id, "msgid", f.MessageID, "rule", f.Rule, "step", f.Step)
	switch f.State {
	case store.StateHeld:
		if now.Before(f.HeldUntil) {
			d.sched.Set(id, f.HeldUntil)
			return
		}
		nf, err := d.db.Transition(id, store.EvResume, now, "away window ended", func(f *store.FollowUp) error {
			f.State = store.StateWaiting
			f.HeldUntil = time.Time{}
			f.Due = a.cal.NextOpen(now)
			return nil
		})
		if err != nil {
			log.Error("resuming held follow-up", "err", err)
			return
		}
		d.reschedule(nf)
		return
	case store.StateWaiting:
	default:
		return // answered, stopped, ... since it was scheduled
	}
	if now.Before(f.Due) {
		d.sched.Set(id, f.Due)
		return
	}
	// The contact (any of the recipients) may be away.
	for _, to := range f.To {
		until, ok, err := d.db.AwayUntil(to.Addr)
		if err == nil && ok && until.After(now) {
			d.hold(f, until, "contact "+to.Addr+" away until "+until.Format("2006-01-02"))
			return
		}
	}
	// Business days and the send window.
	if open := a.cal.NextOpen(now); open.After(now) {
		log.Debug("outside send window", "next", open)
		d.sched.Set(id, open)
		return
	}
	// Too late to make sense: skip rather than send out of context.
	if d.tooLate(a, f.Due, now) {
		nf, err := d.db.Transition(id, store.EvSkip, now, fmt.Sprintf("step %d overdue since %s (max_overdue)", f.Step, f.Due.Format(time.RFC3339)), func(f *store.FollowUp) error {
			return d.advance(a, f, now)
		})
		if err != nil {
			log.Error("skipping overdue step", "err", err)
			return
		}
		log.Info("skipped overdue step", "due", f.Due)
		d.emit(Event{Account: a.cfg.Name, FollowUp: id, MessageID: f.MessageID, Kind: "skipped", Step: f.Step, Text: fmt.Sprintf("step %d of %q overdue since %s: skipped", f.Step, f.Subject, f.Due.Format("Mon 02 Jan 15:04"))})
		d.reschedule(nf)
		return
	}
	// Pacing: at most max_per_hour per account, spread with jitter.
	a.mu.Lock()
	slot, ok := a.reserved[id]
	if !ok {
		slot = a.pacer.Reserve(now)
		a.reserved[id] = slot
	}
	a.mu.Unlock()
	if slot.After(now) {
		d.sched.Set(id, slot)
		return
	}
	a.mu.Lock()
	delete(a.reserved, id)
	a.mu.Unlock()

	// Ask the server itself: a reply may be in the INBOX that the watcher
	// has not processed yet (invariant 2).
	if wait, err := d.unprocessedReply(ctx, a, f); err != nil {
		log.Warn("checking server for replies before send; retrying", "err", err)
		d.sched.Set(id, now.Add(d.opt.RetryBase))
		return
	} else if wait {
		log.Info("server holds a message in this thread not yet processed; waiting for the watcher")
		d.sched.Set(id, now.Add(d.opt.ReplyWait))
		return
	}
	// The server check takes time: the window may have closed meanwhile.
	if after := d.clk.Now(); a.cal.NextOpen(after).After(after) {
		d.sched.Set(id, a.cal.NextOpen(after))
		return
	}
	d.submit(ctx, a, f)
}

// tooLate reports whether a step due at due is overdue by more than
// max_overdue: business days count by the account's calendar, a plain
// duration by the wall clock.
func (d *Daemon) tooLate(a *account, due, now time.Time) bool {
	mo := d.cfg.MaxOverdue
	if mo.IsZero() {
		return false
	}
	late := a.cal.Add(due, mo.Duration, mo.BusinessDays)
	return now.After(late)
}

// unprocessedReply searches the sender's INBOX for messages citing the
// thread with a UID the watcher has not processed yet.
func (d *Daemon) unprocessedReply(ctx context.Context, a *account, f *store.FollowUp) (bool, error) {
	if d.opt.Replay {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inbox := a.cfg.Folders.Inbox
	if inbox == "" {
		inbox = "INBOX"
	}
	var uids []uint32
	err := d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		var err error
		uids, err = imapwatch.SearchReplies(ctx, c, inbox, append([]string{f.MessageID}, f.Sent...))
		return err
	})
	if err != nil {
		return false, err
	}
	st, err := d.db.SyncState(a.cfg.Name, inbox)
	if err != nil {
		return false, err
	}
	for _, u := range uids {
		if u > st.LastUID {
			return true, nil
		}
	}
	return false, nil
}

// submit writes the intent, renders, submits and records the outcome.
func (d *Daemon) submit(ctx context.Context, a *account, f *store.FollowUp) {
	now := d.clk.Now()
	log := d.log.With("account", a.cfg.Name, "id", f.ID, "msgid", f.MessageID, "rule", f.Rule, "step", f.Step)
	r, err := d.reminder(a, f, now)
	if err != nil {
		// A template that fails at send time is a configuration problem
		// `check` could not see; fail the follow-up loudly, never guess.
		log.Error("rendering reminder", "err", err)
		d.failPermanent(f, now, "rendering reminder: "+err.Error())
		return
	}
	mode := d.mode(a, f)
	if mode == config.ModeApprove && f.Approved == f.Step {
		mode = config.ModeAuto // a person approved this step's draft (`followupd approve`)
	}
	// Intent first (invariant 1): once this commits, the step is never
	// submitted again without proof that it was not sent.
	step, id := f.Step, f.ID
	f, err = d.db.Transition(f.ID, store.EvDue, now, fmt.Sprintf("step %d due (%s)", f.Step, mode), func(f *store.FollowUp) error {
		// Re-check what the pre-send checks took time for: a snooze or
		// the sender's own follow-up since then moved Due, or the step
		// changed; then this is not the moment.
		if f.State != store.StateWaiting || f.Step != step || now.Before(f.Due) {
			return store.ErrNoChange
		}
		f.State = store.StateSending
		f.SendID = r.MessageID
		return nil
	})
	if errors.Is(err, store.ErrNoChange) {
		if f != nil {
			d.reschedule(f)
		}
		return
	}
	if err != nil {
		log.Error("writing send intent; retrying", "err", err)
		d.sched.Set(id, now.Add(d.opt.RetryBase))
		return
	}
	d.sched.Cancel(f.ID)
	raw, err := send.Build(r)
	if err != nil {
		d.rollback(a, f, now, "building reminder: "+err.Error(), false)
		return
	}
	switch mode {
	case config.ModeDryRun:
		log.Info("dry-run: would send reminder", "to", addrs(r.To))
		d.completed(a, f, store.EvSent, "dry-run: recorded, not sent", "sent")
		return
	case config.ModeApprove:
		d.draft(ctx, a, f, raw)
		return
	}
	// The "submitting" mark goes in right before DATA's final dot: a crash
	// before it is provably unsent (retried at restart), after it the
	// outcome must be proven (recoverInFlight).
	err = a.sub.SubmitWith(ctx, r, raw, func() error {
		return d.db.MarkSubmitting(f.ID, f.Step, f.SendID, d.clk.Now())
	})
	if err != nil {
		var se *send.Error
		isSendErr := errors.As(err, &se)
		switch {
		case isSendErr && se.Permanent:
			log.Warn("reminder refused permanently", "code", se.Code, "err", err)
			d.failPermanent(f, d.clk.Now(), fmt.Sprintf("SMTP %d %s", se.Code, se.Text))
		case isSendErr && se.MaybeSent:
			// The whole message went out but no reply came back: the
			// server may have it. Never resend blindly (invariant 1).
			log.Warn("reminder outcome unknown", "err", err)
			d.settle(ctx, a, f, "SMTP outcome unknown: "+err.Error())
		default:
			d.rollback(a, f, d.clk.Now(), err.Error(), true)
		}
		return
	}
	// Accepted: record the outcome first — the window in which a crash
	// leaves the step uncertain is only the server's reply and this
	// commit — then file the copy in Sent so the sender sees it. A crash
	// between the two costs the Sent copy, never a second reminder.
	d.completed(a, f, store.EvSent, fmt.Sprintf("step %d sent as %s", f.Step, r.MessageID), "sent")
	if !a.cfg.ServerSavesSent {
		if err := d.appendCopy(ctx, a, "Sent", raw, []string{`\Seen`}); err != nil {
			log.Warn("appending reminder to Sent", "err", err)
		}
	}
}

// completed records a step's success and schedules the next.
func (d *Daemon) completed(a *account, f *store.FollowUp, ev store.Event, reason, kind string) {
	now := d.clk.Now()
	step := f.Step
	nf, err := d.db.Transition(f.ID, ev, now, reason, func(f *store.FollowUp) error {
		if f.State != store.StateSending && f.State != store.StateDraft {
			return store.ErrNoChange // an answer landed meanwhile; it wins
		}
		return d.advance(a, f, now)
	})
	if errors.Is(err, store.ErrNoChange) {
		return
	}
	if err != nil {
		d.log.Error("recording sent step", "account", a.cfg.Name, "id", f.ID, "step", step, "err", err)
		return
	}
	d.log.Info("reminder sent", "account", a.cfg.Name, "id", nf.ID, "msgid", nf.MessageID, "step", step, "next", nf.State)
	next := "chain finished"
	if nf.State == store.StateWaiting {
		next = fmt.Sprintf("step %d due %s", nf.Step, nf.Due.In(a.cal.Location()).Format("Mon 02 Jan 15:04:05"))
	}
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: kind, Step: step,
		Text: fmt.Sprintf("reminder %d for %q sent to %s; %s", step, nf.Subject, addrs(nf.To), next)})
	d.reschedule(nf)
}

// rollback: the step was provably not sent (temporary SMTP failure, or it
// failed before submission); retry with backoff, bounded.
func (d *Daemon) rollback(a *account, f *store.FollowUp, now time.Time, reason string, temporary bool) {
	if f.Attempts+1 >= d.opt.MaxAttempts {
		d.failPermanent(f, now, fmt.Sprintf("giving up after %d attempts: %s", f.Attempts+1, reason))
		return
	}
	wait := d.opt.RetryBase << f.Attempts
	if wait > d.opt.RetryMax || wait <= 0 {
		wait = d.opt.RetryMax
	}
	nf, err := d.db.Transition(f.ID, store.EvRetry, now, "not sent, retrying: "+reason, func(f *store.FollowUp) error {
		if f.State != store.StateSending {
			return store.ErrNoChange
		}
		f.State = store.StateWaiting
		f.Attempts++
		f.SendID = ""
		f.Due = now.Add(wait)
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoChange) {
			d.log.Error("recording retry", "id", f.ID, "err", err)
		}
		return
	}
	d.log.Warn("reminder not sent; will retry", "account", a.cfg.Name, "id", f.ID, "step", f.Step, "attempt", nf.Attempts, "retry_at", nf.Due, "err", reason)
	d.emit(Event{Account: a.cfg.Name, FollowUp: f.ID, MessageID: f.MessageID, Kind: "retry", Step: f.Step, Text: "temporary failure, retry at " + nf.Due.Format("15:04:05") + ": " + reason})
	// A retry is due at its own time, and max_overdue counts from it: a
	// server down for a day must not turn every reminder into a skip.
	d.reschedule(nf)
}

func (d *Daemon) failPermanent(f *store.FollowUp, now time.Time, reason string) {
	nf, err := d.db.Transition(f.ID, store.EvPermFail, now, reason, func(f *store.FollowUp) error {
		if f.State != store.StateSending && f.State != store.StateWaiting {
			return store.ErrNoChange
		}
		f.State = store.StateFailed
		f.Outcome = reason
		f.Due = time.Time{}
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoChange) {
			d.log.Error("recording failure", "id", f.ID, "err", err)
		}
		return
	}
	d.sched.Cancel(f.ID)
	d.log.Error("reminder failed permanently", "account", nf.Account, "id", nf.ID, "step", nf.Step, "reason", reason)
	d.emit(Event{Account: nf.Account, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "failed", Step: nf.Step, Text: reason})
}

// draft places the reminder in the sender's Drafts (approval mode).
func (d *Daemon) draft(ctx context.Context, a *account, f *store.FollowUp, raw []byte) {
	if err := d.appendCopy(ctx, a, "Drafts", raw, []string{`\Draft`}); err != nil {
		d.rollback(a, f, d.clk.Now(), "appending draft: "+err.Error(), true)
		return
	}
	sendID := f.SendID
	nf, err := d.db.Transition(f.ID, store.EvDrafted, d.clk.Now(), "reminder placed in Drafts for approval", func(f *store.FollowUp) error {
		if f.State != store.StateSending || f.SendID != sendID {
			return store.ErrNoChange // answered or stopped during the APPEND
		}
		f.State = store.StateDraft
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoChange) {
			d.log.Error("recording draft", "id", f.ID, "err", err)
		}
		// Nothing records this draft: take it back out of Drafts so it
		// cannot be sent after the answer.
		if derr := d.deleteDrafts(ctx, a, []string{sendID}); derr != nil {
			d.log.Warn("removing an unrecorded draft", "account", a.cfg.Name, "id", f.ID, "msgid", sendID, "err", derr)
		}
		return
	}
	d.draftNoted(a.cfg.Name) // before the event: a test may move the clock on it
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "drafted", Step: nf.Step, Text: fmt.Sprintf("reminder %d for %q waits in Drafts", nf.Step, nf.Subject)})
}

// appendCopy APPENDs raw to the account's folder of the given role.
func (d *Daemon) appendCopy(ctx context.Context, a *account, role string, raw []byte, flags []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		sent, drafts, err := d.folders(ctx, c, a)
		if err != nil {
			return err
		}
		mailbox := sent
		if role == "Drafts" {
			mailbox = drafts
		}
		if mailbox == "" {
			return errNoFolder(a, role)
		}
		return imapwatch.Append(ctx, c, mailbox, raw, flags, d.clk.Now())
	})
}

func (d *Daemon) mode(a *account, f *store.FollowUp) config.Mode {
	if d.opt.Replay {
		return config.ModeDryRun // a replay never sends
	}
	m := d.cfg.RuleMode(a.cfg, d.cfg.Rule(f.Rule))
	if m == "" {
		return config.ModeAuto
	}
	return m
}

// reminder renders f's current step.
func (d *Daemon) reminder(a *account, f *store.FollowUp, now time.Time) (*send.Reminder, error) {
	steps := d.steps(d.cfg.Rule(f.Rule))
	if f.Step < 1 || f.Step > len(steps) {
		return nil, fmt.Errorf("rule %s has no step %d", f.Rule, f.Step)
	}
	st := steps[f.Step-1]
	tpl := d.cfg.Template(st.Template)
	if tpl == nil {
		return nil, fmt.Errorf("template %q not found", st.Template)
	}
	var first message.Address
	if len(f.To) > 0 {
		first = f.To[0]
	}
	loc := a.cal.Location()
	data := config.TemplateData{
		RecipientName:      first.Name,
		RecipientFirstName: firstName(first.Name),
		RecipientAddress:   first.Addr,
		Recipients:         f.To,
		Subject:            f.Subject,
		SentDate:           f.SentAt.In(loc),
		SentDateText:       f.SentAt.In(loc).Format("02.01.2006"),
		SenderName:         a.cfg.DisplayName,
		SenderAddress:      a.cfg.Address,
		Step:               f.Step,
		Steps:              len(steps),
		DaysWaited:         a.cal.BusinessDaysBetween(f.SentAt, now),
		Rule:               f.Rule,
		Kind:               f.Kind,
		Vars:               f.Vars,
	}
	if data.Vars == nil {
		data.Vars = map[string]string{}
	}
	subj, text, html, err := send.Render(tpl, data)
	if err != nil {
		return nil, err
	}
	refs := append(append([]string(nil), f.References...), f.MessageID)
	r := &send.Reminder{
		FollowUpID: f.ID,
		Step:       f.Step,
		From:       message.Address{Name: a.cfg.DisplayName, Addr: a.cfg.Address},
		To:         f.To,
		Subject:    subj,
		InReplyTo:  f.MessageID,
		References: refs,
		MessageID:  message.NewOwnMessageID(domainOf(a.cfg.Address), f.ID, f.Step),
		Date:       now,
		Text:       text,
		HTML:       html,
	}
	if rule := d.cfg.Rule(f.Rule); rule != nil && rule.IncludeCc {
		r.Cc = f.Cc
	}
	return r, nil
}

func firstName(name string) string {
	name = strings.TrimSpace(name)
	if i := strings.IndexByte(name, ' '); i > 0 {
		return name[:i]
	}
	return name
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// recoverInFlight settles steps left in sending by a crash (DESIGN: restart
// finds intent without outcome): proven by the own copy in Sent -> sent;
// else uncertain, for a person. Never resent blindly.
func (d *Daemon) recoverInFlight(ctx context.Context, a *account) {
	fs, err := d.db.InState(store.StateSending)
	if err != nil {
		d.log.Error("listing in-flight steps", "account", a.cfg.Name, "err", err)
		return
	}
	for _, f := range fs {
		if f.Account != a.cfg.Name {
			continue
		}
		le, err := d.db.LastLedger(f.ID, f.Step)
		if err != nil {
			d.log.Error("reading ledger of in-flight step", "account", a.cfg.Name, "id", f.ID, "err", err)
			continue
		}
		if le != nil && le.State == store.LedgerIntent && le.MessageID == f.SendID {
			// Stopped before the end of DATA: the server never had it.
			d.retryNow(a, f, "restart: step was never handed to the server (no submitting mark); sending again")
			continue
		}
		if ctx.Err() != nil {
			return
		}
		d.settle(ctx, a, f, "restart: step "+fmt.Sprint(f.Step)+" was being submitted when followupd stopped")
	}
}

// retryNow rolls an in-flight step back to waiting, due at once.
func (d *Daemon) retryNow(a *account, f *store.FollowUp, reason string) {
	now := d.clk.Now()
	nf, err := d.db.Transition(f.ID, store.EvRetry, now, reason, func(f *store.FollowUp) error {
		if f.State != store.StateSending {
			return store.ErrNoChange
		}
		f.State = store.StateWaiting
		f.SendID = ""
		f.Due = now
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoChange) {
			d.log.Error("rolling back in-flight step", "account", a.cfg.Name, "id", f.ID, "err", err)
		}
		return
	}
	d.log.Info("in-flight step rolled back", "account", a.cfg.Name, "id", nf.ID, "step", nf.Step, "reason", reason)
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "retry", Step: nf.Step, Text: reason})
	d.reschedule(nf)
}

// settle decides a step whose SMTP outcome is unknown: its own copy in Sent
// proves it sent; otherwise it becomes uncertain, for a person to decide.
// It is never resent blindly.
func (d *Daemon) settle(ctx context.Context, a *account, f *store.FollowUp, why string) {
	found, err := d.findInSent(ctx, a, f.SendID)
	if err != nil && ctx.Err() != nil {
		return // stopping: settle it at the next start, not as uncertain
	}
	if err != nil {
		d.log.Warn("looking for own copy in Sent", "account", a.cfg.Name, "id", f.ID, "err", err)
	}
	if found {
		d.completed(a, f, store.EvSent, why+": own copy "+f.SendID+" found in Sent", "sent")
		return
	}
	nf, err := d.db.Transition(f.ID, store.EvUncertain, d.clk.Now(), why+"; no copy in Sent; not resent", func(f *store.FollowUp) error {
		if f.State != store.StateSending {
			return store.ErrNoChange
		}
		f.State = store.StateUncertain
		f.Due = time.Time{}
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoChange) {
			d.log.Error("marking step uncertain", "id", f.ID, "err", err)
		}
		return
	}
	d.sched.Cancel(nf.ID)
	d.log.Warn("step uncertain: a person must decide", "account", a.cfg.Name, "id", nf.ID, "step", nf.Step, "send_id", nf.SendID, "reason", why)
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "uncertain", Step: nf.Step, Text: why + "; not resent"})
}

func (d *Daemon) findInSent(ctx context.Context, a *account, msgid string) (bool, error) {
	if msgid == "" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var found bool
	err := d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		sent, _, err := d.folders(ctx, c, a)
		if err != nil {
			return err
		}
		if sent == "" {
			return errNoFolder(a, "Sent")
		}
		found, err = imapwatch.FindMessageID(ctx, c, sent, msgid)
		return err
	})
	return found, err
}
