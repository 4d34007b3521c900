package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	early, ok := d.waitSync(ctx, a)
	if !ok {
		return
	}
	for _, id := range early {
		select {
		case <-ctx.Done():
			return
		case <-a.quit:
			return
		default:
		}
		d.current().step(ctx, a, id)
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

// waitSync waits for a's first sync. Steps falling due meanwhile cannot
// be judged yet (the replies of the downtime are not in), so they are kept
// to run once synced (returned, in order) and, should the first sync take
// long (the IMAP server is down), looked at every syncRecheck meanwhile:
// keepEligible keeps them from ageing into a max_overdue skip while the
// daemon is up and only the server is not. It reports false when the
// sender must stop instead.
func (d *Daemon) waitSync(ctx context.Context, a *account) ([]uint64, bool) {
	var early []uint64
	kept := map[uint64]bool{}
	for {
		select {
		case <-a.synced:
			return early, true
		case <-a.quit:
			return nil, false
		case <-ctx.Done():
			return nil, false
		case id := <-a.queue:
			d.current().keepEligible(a, id)
			if !kept[id] {
				kept[id] = true
				early = append(early, id)
			}
		}
	}
}

// keepEligible is, for a step due before its account finished its first
// sync, what step's deferrals do: a waiting step, due, inside the send
// window and not overdue is kept eligible (deferEligible), and the wheel
// looks again after syncRecheck. Nothing is sent or skipped here.
func (d *Daemon) keepEligible(a *account, id uint64) {
	now := d.clk.Now()
	next := now.Add(d.syncRecheck())
	f, err := d.db.Get(id)
	if err != nil || f.State != store.StateWaiting || now.Before(f.Due) || a.cal.NextOpen(now).After(now) || d.tooLate(a, f.OverdueBase(), now) {
		d.sched.Set(id, next)
		return
	}
	d.deferEligible(a, f, now, next)
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
	case store.StateSending:
		// Only a step whose outcome could not be settled is scheduled in
		// sending (recoverStep); none is in flight here, since this
		// goroutine is the account's only sender.
		d.recoverStep(ctx, a, f, "looking again", false)
		return
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
	// Too late to make sense: skip rather than send out of context. Late
	// counts from Due, or from the last time this daemon, up and trying,
	// had to defer the step (store.FollowUp.OverdueBase).
	if base := f.OverdueBase(); d.tooLate(a, base, now) {
		reason := fmt.Sprintf("step %d overdue since %s (max_overdue)", f.Step, f.Due.Format(time.RFC3339))
		if base.After(f.Due) {
			reason += fmt.Sprintf("; last deferred by followupd at %s, then not tried again until now", base.Format(time.RFC3339))
		}
		nf, err := d.db.Transition(id, store.EvSkip, now, reason, func(f *store.FollowUp) error {
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
		d.deferEligible(a, f, now, slot)
		return
	}
	a.mu.Lock()
	delete(a.reserved, id)
	a.mu.Unlock()

	// Ask the server itself: a reply may be in the INBOX that the watcher
	// has not processed yet (invariant 2).
	if wait, err := d.unprocessedReply(ctx, a, f); err != nil {
		log.Warn("checking server for replies before send; retrying", "err", err)
		d.deferEligible(a, f, now, d.clk.Now().Add(d.opt.RetryBase))
		return
	} else if wait {
		log.Info("server holds a message in this thread not yet processed; waiting for the watcher")
		d.deferEligible(a, f, now, d.clk.Now().Add(d.opt.ReplyWait))
		return
	}
	// The server check takes time: the window may have closed meanwhile.
	if after := d.clk.Now(); a.cal.NextOpen(after).After(after) {
		d.deferEligible(a, f, now, a.cal.NextOpen(after))
		return
	}
	d.submit(ctx, a, f)
}

// deferEligible puts f's step, found eligible to send at now, back in the
// wheel at next for an operational reason (pacing, the pre-send IMAP check,
// waiting for the watcher or the first sync, the window closing during the
// check). max_overdue is for a daemon that was down or behind, not for
// these: when the step would count as overdue by the time it can next be
// tried (next, or the send window's next opening after it, plus a margin),
// the point it counts from moves to now (store.MarkEligible). That is about
// one write per max_overdue period of deferral, none on the usual path,
// and no history entry; a daemon stopped meanwhile for longer than
// max_overdue still skips the step.
func (d *Daemon) deferEligible(a *account, f *store.FollowUp, now, next time.Time) {
	if d.tooLate(a, f.OverdueBase(), a.cal.NextOpen(next).Add(d.eligibleMargin())) {
		if err := d.db.MarkEligible(f.ID, f.Step, f.Due, now); err != nil && !errors.Is(err, store.ErrNoChange) {
			// The step may be skipped when it is tried next; log it, the
			// deferral itself stands.
			d.log.Warn("recording that a deferred step was eligible", "account", a.cfg.Name, "id", f.ID, "step", f.Step, "err", err)
		} else if err == nil {
			d.log.Debug("deferred step kept eligible", "account", a.cfg.Name, "id", f.ID, "step", f.Step, "due", f.Due, "next", next)
		}
	}
	d.sched.Set(f.ID, next)
}

// eligibleMargin is how far ahead of its next try a deferred step is
// kept eligible: an hour, or a quarter of a max_overdue given as a
// shorter plain duration.
func (d *Daemon) eligibleMargin() time.Duration {
	m := time.Hour
	if mo := d.cfg.MaxOverdue; mo.BusinessDays == 0 && mo.Duration > 0 && mo.Duration/4 < m {
		m = mo.Duration / 4
	}
	return m
}

// syncRecheck is how often a due step waiting for its account's first
// sync is looked at (keepEligible): within the margin, so the mark keeps up.
func (d *Daemon) syncRecheck() time.Duration {
	return min(5*time.Minute, d.eligibleMargin())
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
	d.completedAs(a, f, ev, reason, kind, "")
}

// completedAs is completed for a step that went out under another of its
// Message-IDs, sentAs (an earlier attempt's draft the sender sent): that id
// joins f.Sent too, so answers and bounces citing it find the follow-up.
func (d *Daemon) completedAs(a *account, f *store.FollowUp, ev store.Event, reason, kind, sentAs string) {
	now := d.clk.Now()
	step := f.Step
	nf, err := d.db.Transition(f.ID, ev, now, reason, func(f *store.FollowUp) error {
		if f.State != store.StateSending && f.State != store.StateDraft {
			return store.ErrNoChange // an answer landed meanwhile; it wins
		}
		if sentAs != "" && !slices.Contains(f.Sent, sentAs) {
			f.Sent = append(f.Sent, sentAs)
		}
		return d.advance(a, f, now)
	})
	if errors.Is(err, store.ErrNoChange) {
		return
	}
	if err != nil {
		// The step stays where it is (sending, or a draft): look at it
		// again later rather than leave it without a timer until a restart.
		d.log.Error("recording sent step; will look at it again", "account", a.cfg.Name, "id", f.ID, "step", step, "err", err)
		d.sched.Set(f.ID, now.Add(d.opt.RetryBase))
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
//
// A draft must exist at most once per step: the sender can send every copy.
// An APPEND that fails may still have landed (the reply was lost, or a slow
// server stored it after the timeout), so a failed APPEND is never simply
// rolled back: the step's own Message-ID is looked up in Drafts and Sent
// first (draftOutcome), and while that cannot be done the step stays in
// sending and is looked up again. Before a step is drafted again, the
// drafts of its earlier attempts are swept out of Drafts (sweepDrafts), for
// a copy that landed after the look-up.
func (d *Daemon) draft(ctx context.Context, a *account, f *store.FollowUp, raw []byte) {
	log := d.log.With("account", a.cfg.Name, "id", f.ID, "msgid", f.MessageID, "step", f.Step, "send_id", f.SendID)
	sentAs, err := d.sweepDrafts(ctx, a, f)
	if err != nil {
		// Nothing of this attempt was appended yet: a plain retry.
		d.rollback(a, f, d.clk.Now(), "removing earlier drafts of the step: "+err.Error(), true)
		return
	}
	if sentAs != "" {
		log.Info("an earlier draft of this step was sent by the sender; not drafted again", "sent_as", sentAs)
		d.completedAs(a, f, store.EvSent, fmt.Sprintf("step %d was sent by the sender as %s, the draft of an earlier attempt (found in Sent); %s not drafted", f.Step, sentAs, f.SendID), "sent", sentAs)
		return
	}
	if err := d.appendCopy(ctx, a, "Drafts", raw, []string{`\Draft`}); err != nil {
		log.Warn("appending draft failed; looking for it in Drafts and Sent", "err", err)
		d.draftOutcome(ctx, a, f, "appending draft: "+err.Error(), false)
		return
	}
	d.recordDrafted(ctx, a, f, "reminder placed in Drafts for approval")
}

// recordDrafted records f's step as drafted (its copy is in Drafts). When
// the follow-up was answered or stopped meanwhile, nothing records the
// draft, so it is taken back out of Drafts.
func (d *Daemon) recordDrafted(ctx context.Context, a *account, f *store.FollowUp, reason string) {
	sendID := f.SendID
	nf, err := d.db.Transition(f.ID, store.EvDrafted, d.clk.Now(), reason, func(f *store.FollowUp) error {
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
		if !errors.Is(err, store.ErrNoChange) {
			// A store failure left the step in sending: look again later
			// (its draft is gone, so it is drafted afresh or settled).
			d.sched.Set(f.ID, d.clk.Now().Add(d.opt.RetryBase))
		}
		return
	}
	d.draftNoted(a.cfg.Name) // before the event: a test may move the clock on it
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "drafted", Step: nf.Step, Text: fmt.Sprintf("reminder %d for %q waits in Drafts", nf.Step, nf.Subject)})
}

// draftOutcome settles a step in sending whose draft may or may not have
// been appended (a failed APPEND; a restart after an intent without the
// submitting mark): its own Message-ID in Drafts -> drafted; in Sent -> the
// sender sent it; in neither -> provably not there, retried (restart: at
// once, else with backoff). When the folders cannot be searched the step
// stays in sending and the look-up is repeated after RetryBase (step
// handles it): a retry now could leave two drafts.
func (d *Daemon) draftOutcome(ctx context.Context, a *account, f *store.FollowUp, why string, restart bool) {
	log := d.log.With("account", a.cfg.Name, "id", f.ID, "msgid", f.MessageID, "step", f.Step, "send_id", f.SendID)
	where, err := d.findOwnCopy(ctx, a, f.SendID)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the restart looks again
		}
		retry := d.clk.Now().Add(d.opt.RetryBase)
		log.Warn("cannot tell whether the step is in Drafts or Sent; it stays in sending, looking again later", "why", why, "retry_at", retry, "err", err)
		d.sched.Set(f.ID, retry)
		return
	}
	switch where {
	case "Drafts":
		log.Info("the step's draft is in Drafts after all", "why", why)
		d.recordDrafted(ctx, a, f, why+"; the draft "+f.SendID+" is in Drafts: recorded as drafted")
	case "Sent":
		d.completed(a, f, store.EvSent, why+"; own copy "+f.SendID+" found in Sent", "sent")
	default:
		if restart {
			d.retryNow(a, f, why+"; not in Drafts nor Sent; sending again")
		} else {
			d.rollback(a, f, d.clk.Now(), why+"; not in Drafts nor Sent", true)
		}
	}
}

// findOwnCopy looks for one of our Message-IDs in a's Drafts, then Sent,
// on one connection, and names the folder role it is in ("" for neither).
func (d *Daemon) findOwnCopy(ctx context.Context, a *account, msgid string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	where := ""
	err := d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		sent, drafts, err := d.folders(ctx, c, a)
		if err != nil {
			return err
		}
		for _, box := range []struct{ role, name string }{{"Drafts", drafts}, {"Sent", sent}} {
			if box.name == "" {
				continue
			}
			found, err := imapwatch.FindMessageID(ctx, c, box.name, msgid)
			if err != nil {
				return err
			}
			if found {
				where = box.role
				return nil
			}
		}
		return nil
	})
	return where, err
}

// sweepDrafts removes from Drafts the drafts of f's step's earlier attempts
// (ledger entries rolled back): an APPEND that failed and was looked up in
// vain may have been stored later, and that copy must not sit next to the
// new draft. An earlier draft found in Sent was sent by the sender; its
// Message-ID is returned and nothing is removed.
func (d *Daemon) sweepDrafts(ctx context.Context, a *account, f *store.FollowUp) (sentAs string, err error) {
	led, err := d.db.Ledger(f.ID)
	if err != nil {
		return "", fmt.Errorf("reading the ledger: %w", err)
	}
	var earlier []string
	for _, e := range led {
		if e.Step == f.Step && e.State == store.LedgerRolledBack && e.MessageID != f.SendID {
			earlier = append(earlier, e.MessageID)
		}
	}
	if len(earlier) == 0 {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		sent, drafts, err := d.folders(ctx, c, a)
		if err != nil {
			return err
		}
		if sent != "" {
			for _, id := range earlier {
				found, err := imapwatch.FindMessageID(ctx, c, sent, id)
				if err != nil {
					return err
				}
				if found {
					sentAs = id
					return nil
				}
			}
		}
		if drafts == "" {
			return errNoFolder(a, "Drafts")
		}
		for _, id := range earlier {
			n, err := d.deleteDraft(ctx, c, a, drafts, id)
			if err != nil {
				return err
			}
			if n > 0 {
				d.log.Info("removed the draft of an earlier attempt", "account", a.cfg.Name, "id", f.ID, "step", f.Step, "draft", id)
			}
		}
		return nil
	})
	return sentAs, err
}

// deleteDraft removes the draft with Message-ID id from drafts
// (imapwatch.DeleteMessageID). On a server without UIDPLUS the user's own
// \Deleted messages lose that flag for the EXPUNGE; when it could not be
// set back after the EXPUNGE (n > 0: a failed EXPUNGE can carry the same
// error) the drafts are gone all the same, so that is logged, not
// returned: the caller's decision rests on the draft being removed.
func (d *Daemon) deleteDraft(ctx context.Context, c *imapclient.Client, a *account, drafts, id string) (int, error) {
	n, err := imapwatch.DeleteMessageID(ctx, c, drafts, id)
	if n > 0 && errors.Is(err, imapwatch.ErrDeletedNotRestored) {
		d.log.Warn("draft removed; the user's other deleted messages in Drafts show as not deleted", "account", a.cfg.Name, "draft", id, "err", err)
		return n, nil
	}
	return n, err
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
		if ctx.Err() != nil {
			return
		}
		d.recoverStep(ctx, a, f, "restart", true)
	}
}

// recoverStep settles one step left in sending with no send under way (a
// restart, or a look-up that failed before). Without the submitting mark
// it never reached the end of DATA, but it may have been APPENDed to
// Drafts (approval mode; the mode may have changed since), so its own copy
// is looked for first (draftOutcome). With the mark its outcome must be
// proven (settle). restart: at start-up, where a step found in neither
// folder is sent again at once rather than after a backoff.
func (d *Daemon) recoverStep(ctx context.Context, a *account, f *store.FollowUp, why string, restart bool) {
	le, err := d.db.LastLedger(f.ID, f.Step)
	if err != nil {
		d.log.Error("reading ledger of in-flight step; retrying", "account", a.cfg.Name, "id", f.ID, "err", err)
		d.sched.Set(f.ID, d.clk.Now().Add(d.opt.RetryBase))
		return
	}
	if le != nil && le.State == store.LedgerIntent && le.MessageID == f.SendID {
		d.draftOutcome(ctx, a, f, why+": step "+fmt.Sprint(f.Step)+" has an intent without the submitting mark (never handed over by SMTP; a draft may have been appended)", restart)
		return
	}
	d.settle(ctx, a, f, why+": step "+fmt.Sprint(f.Step)+" was being submitted and its outcome was not recorded")
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
