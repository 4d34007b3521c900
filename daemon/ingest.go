package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"followupd/classify"
	"followupd/config"
	"followupd/imapwatch"
	"followupd/message"
	"followupd/store"
)

// sink adapts one account's watcher to the daemon (imapwatch.Sink). It
// names its account rather than holding it: a watcher kept across a reload
// feeds the reloaded account (reload.go).
type sink struct {
	d    *Daemon
	name string
}

var _ imapwatch.StateSink = (*sink)(nil)

// current is the live daemon view and this sink's account in it.
func (s *sink) current() (*Daemon, *account, error) {
	d := s.d.current()
	a := d.accounts[s.name]
	if a == nil {
		return nil, nil, fmt.Errorf("account %s is no longer configured", s.name)
	}
	return d, a, nil
}

func (s *sink) LoadState(account, mailbox string) (imapwatch.State, error) {
	st, err := s.d.db.SyncState(account, mailbox)
	return imapwatch.State{UIDValidity: st.UIDValidity, LastUID: st.LastUID, HighestModSeq: st.HighestModSeq}, err
}

func (s *sink) SaveState(account, mailbox string, st imapwatch.State) error {
	return s.d.db.PutSyncState(account, mailbox, store.SyncState{UIDValidity: st.UIDValidity, LastUID: st.LastUID, HighestModSeq: st.HighestModSeq})
}

// HandleMessages processes a batch in UID order. A message the store
// already holds was fully processed before (its record is written last), so
// it is skipped; everything else is processed, then stored.
func (s *sink) HandleMessages(ctx context.Context, recs []*message.Record) error {
	return s.handle(ctx, recs, func(db *store.DB, recs []*message.Record) ([]bool, error) {
		return db.PutMessages(recs)
	})
}

// HandleBatch is HandleMessages with the folder's new sync state stored in
// the same transaction as the batch's records (imapwatch.StateSink): one
// fsync per batch for the two, and LastUID is never stored ahead of the
// records it covers, nor when processing fails.
func (s *sink) HandleBatch(ctx context.Context, account, mailbox string, recs []*message.Record, st imapwatch.State) error {
	return s.handle(ctx, recs, func(db *store.DB, recs []*message.Record) ([]bool, error) {
		return db.PutMessagesState(recs, account, mailbox, store.SyncState{UIDValidity: st.UIDValidity, LastUID: st.LastUID, HighestModSeq: st.HighestModSeq})
	})
}

// handle processes recs, then stores them with put (last: a stored record
// means fully processed).
func (s *sink) handle(ctx context.Context, recs []*message.Record, put func(*store.DB, []*message.Record) ([]bool, error)) error {
	d, a, err := s.current()
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(recs))
	var legacy map[*message.Record]string
	for _, rec := range recs {
		ids = append(ids, rec.MessageID)
		if rec.SyntheticID {
			// A store from before SyntheticID read more fields keeps the
			// message under its old id: look that up too.
			if l := message.LegacySyntheticID(rec); l != rec.MessageID {
				if legacy == nil {
					legacy = make(map[*message.Record]string)
				}
				legacy[rec] = l
				ids = append(ids, l)
			}
		}
	}
	// One read transaction for the whole batch (was two Message calls per
	// record; bench/NOTES.md). Nothing below stores a record before
	// PutMessages, so the answer holds for the batch.
	knownIDs, err := d.db.KnownMessages(ids)
	if err != nil {
		return err
	}
	for rec, l := range legacy {
		if knownIDs[rec.MessageID] == nil && knownIDs[l] != nil {
			rec.MessageID = l // the identity it is stored under
		}
	}
	d.refreshHorizon()
	history, cited, err := d.historyOf(recs, knownIDs)
	if err != nil {
		return err
	}
	// A shallow record (the watcher's Shallow: history when fetched) is
	// stored as it is only while it is still history and new; anything
	// that will be looked at is parsed in full first.
	for _, rec := range recs {
		if !rec.IsShallow() || history[rec] {
			continue
		}
		if knownIDs[rec.MessageID] == nil && !cited[rec] {
			// Fetched as history (no body, not parsed) but it is not any
			// more (the horizon moved: a reload with a longer lookback,
			// a store read that failed): judging it without its body
			// could miss a bounce's report or an auto-reply's return
			// date, so the batch is fetched again.
			return fmt.Errorf("message %s (uid %d of %s) was fetched as history, which it no longer is: fetching the batch again", rec.MessageID, rec.UID, rec.Mailbox)
		}
		if rec.Partial {
			// Fetched light (a few fields, no structure) as history, but
			// it is not any more: it cites a follow-up tracked since, or
			// another folder stored it meanwhile. Judged on those fields
			// an auto-reply (Auto-Submitted) or a bounce (its Content-Type)
			// would pass for an answer. Fetched again, the watcher's
			// Light (lightOK) sees it and fetches it in full.
			return fmt.Errorf("message %s (uid %d of %s) was fetched light as history, which it no longer is: fetching the batch again", rec.MessageID, rec.UID, rec.Mailbox)
		}
		// Known (the known path looks at it), or old but citing a tracked
		// message (judged on its header: fetching it again would fetch it
		// shallow again).
		if err := rec.Deepen(); err != nil {
			d.log.Debug("header partly unreadable", "account", a.cfg.Name, "mailbox", rec.Mailbox, "uid", rec.UID, "msgid", rec.MessageID, "err", err)
		}
	}
	verdicts, err := d.recordIncoming(a, recs, knownIDs, history)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if known := knownIDs[rec.MessageID]; known != nil {
			// A message first seen in an INBOX (the sender's copy to self:
			// Cc, or the Bcc to their opt-in plus address; an offer to a
			// colleague's configured mailbox) and now in this account's
			// Sent is still judged as sent. Tracking is idempotent.
			if rec.Role == message.RoleSent && (known.Role != message.RoleSent || known.Account != rec.Account) {
				if err := d.ingestGuarded(ctx, a, rec); err != nil {
					return fmt.Errorf("processing %s in %s: %w", rec.MessageID, rec.Mailbox, err)
				}
				continue
			}
			// Known: only its location (and flags) are new. A flag set
			// while we were away arrives this way after a UIDVALIDITY
			// change (no flag resync then); both stops are idempotent.
			switch rec.Role {
			case message.RoleStop:
				if err := d.rememberStopSighting(a, rec, known); err != nil {
					return fmt.Errorf("processing %s in %s: %w", rec.MessageID, rec.Mailbox, err)
				}
				if err := d.stopByFolder(rec); err != nil {
					return err
				}
			case message.RoleSent:
				if err := d.stopIfFlagged(a, rec); err != nil {
					return err
				}
			}
			continue
		}
		if history[rec] {
			continue // can concern no follow-up (horizon.go): only stored
		}
		if v, ok := verdicts[rec]; ok {
			// Its verdict is stored (recordIncoming): apply it.
			if err := d.applyGuarded(a, rec, v); err != nil {
				return fmt.Errorf("processing %s in %s: %w", rec.MessageID, rec.Mailbox, err)
			}
			continue
		}
		if err := d.ingestGuarded(ctx, a, rec); err != nil {
			return fmt.Errorf("processing %s in %s: %w", rec.MessageID, rec.Mailbox, err)
		}
	}
	// Store every record (known ones update their location index).
	fresh, err := put(d.db, recs)
	if err != nil {
		return err
	}
	// A Stop copy seen for the first time was looked up (stopByFolder)
	// before its record was stored, and its Sent copy may have been tracked
	// in between by the Sent folder's goroutine, which found no Stop record
	// yet (stopIfSeenInStop). Look again now that the record is stored:
	// one of the two sees the other's commit, so the follow-up is stopped.
	// When another folder's copy (INBOX, synced concurrently) was stored
	// first, the stored record names that folder: remember the sighting.
	for i, rec := range recs {
		if rec.Role != message.RoleStop || knownIDs[rec.MessageID] != nil {
			continue
		}
		if i >= len(fresh) || !fresh[i] {
			stored, err := d.db.Message(rec.MessageID)
			if err != nil {
				return fmt.Errorf("processing %s in %s: %w", rec.MessageID, rec.Mailbox, err)
			}
			if err := d.rememberStopSighting(a, rec, stored); err != nil {
				return fmt.Errorf("processing %s in %s: %w", rec.MessageID, rec.Mailbox, err)
			}
		}
		if err := d.stopByFolder(rec); err != nil {
			return err
		}
	}
	d.observeBatch(a, recs, fresh)
	return nil
}

// HandleFlags stops a tracked message the sender flagged ("I handle this one").
func (s *sink) HandleFlags(ctx context.Context, account, mailbox string, role message.Role, uidvalidity, uid uint32, flags []string) error {
	if role != message.RoleSent {
		return nil
	}
	msgid, err := s.d.db.MessageAt(account, mailbox, uidvalidity, uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	rec := &message.Record{MessageID: msgid, Flags: flags}
	d, a, err := s.current()
	if err != nil {
		return err
	}
	return d.stopIfFlagged(a, rec)
}

// ingestGuarded is ingest, with a panic (a bug meeting odd mail) turned
// into a logged skip of that one message: the folder goes on, and the
// message is stored, so it is not retried forever.
func (d *Daemon) ingestGuarded(ctx context.Context, a *account, rec *message.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("skipping message: internal error while processing it", "account", a.cfg.Name, "mailbox", rec.Mailbox, "uid", rec.UID, "msgid", rec.MessageID, "panic", fmt.Sprint(p))
			err = nil
		}
	}()
	return d.ingest(ctx, a, rec)
}

// ingest decides what one new message means.
func (d *Daemon) ingest(ctx context.Context, a *account, rec *message.Record) error {
	switch rec.Role {
	case message.RoleSent:
		if err := d.ingestSent(a, rec); err != nil {
			return err
		}
		return d.forgetStopSighting(rec.MessageID)
	case message.RoleDrafts:
		return nil // never an answer, never tracked
	case message.RoleStop:
		return d.stopByFolder(rec)
	default:
		return d.ingestIncoming(a, rec)
	}
}

func (d *Daemon) ingestSent(a *account, rec *message.Record) error {
	log := d.log.With("account", a.cfg.Name, "msgid", rec.MessageID)
	if rec.IsOwn() {
		return d.ownCopySeen(a, rec)
	}
	// The sender's own follow-up in a tracked thread restarts its chain.
	if handled, err := d.manualFollowUp(a, rec); err != nil || handled {
		return err
	}
	v := d.cls.Sent(a.cfg, rec)
	if !v.Tracked {
		log.Debug("not tracked", "reasons", v.Reasons)
		return nil
	}
	now := d.clk.Now()
	sentAt := sentTime(rec, now)
	if lb := d.lookback(); sentAt.Before(now.Add(-lb)) {
		log.Info("not tracked: older than lookback", "rule", v.Rule, "sent", sentAt, "lookback", lb)
		return nil
	}
	rule := d.cfg.Rule(v.Rule)
	var due time.Time
	if v.OptIn != nil {
		due = a.cal.NextOpen(a.cal.Add(sentAt, v.OptIn.Duration, v.OptIn.BusinessDays))
	} else {
		var ok bool
		due, ok = d.dueFor(a, rule, 1, sentAt)
		if !ok {
			log.Warn("rule has no steps", "rule", v.Rule)
			return nil
		}
	}
	// Reminders go to the original To (and Cc, when the rule includes it)
	// minus the sender's own addresses (a plus-address opt-in copy, a Cc to
	// self) and program addresses (noreply@, mailer-daemon@): never a
	// reminder to ourselves or to an address only a program reads.
	to, dropped := remindable(a, rec.To)
	cc, droppedCc := remindable(a, rec.Cc)
	dropped = append(dropped, droppedCc...)
	if len(dropped) > 0 {
		log.Info("recipients never reminded", "rule", v.Rule, "dropped", dropped)
	}
	if len(to) == 0 {
		log.Info("not tracked: no To recipient left to remind", "rule", v.Rule, "dropped", dropped)
		return nil
	}
	from := message.Address{Addr: strings.ToLower(a.cfg.Address), Name: a.cfg.DisplayName}
	kind := v.Kind
	f := &store.FollowUp{
		Account:     a.cfg.Name,
		MessageID:   rec.MessageID,
		Rule:        v.Rule,
		Kind:        kind,
		Subject:     rec.Subject,
		From:        from,
		To:          to,
		Cc:          cc,
		References:  rec.References,
		ThreadIndex: rec.Headers["Thread-Index"],
		SentAt:      sentAt,
		Vars:        v.Vars,
		State:       store.StateWaiting,
		Step:        1,
		Due:         due,
		LastSent:    sentAt,
	}
	f, created, err := d.db.Track(f, now, "tracked by rule "+v.Rule+": "+strings.Join(v.Reasons, "; "))
	if err != nil {
		return err
	}
	if created {
		log.Info("tracked", "rule", v.Rule, "id", f.ID, "due", f.Due, "reasons", v.Reasons)
		d.emit(Event{Account: a.cfg.Name, FollowUp: f.ID, MessageID: f.MessageID, Kind: "tracked", Step: 1,
			Text: fmt.Sprintf("%s %q to %s tracked by rule %s; step 1 due %s", kindOr(kind), f.Subject, addrs(f.To), v.Rule, f.Due.In(a.cal.Location()).Format("Mon 02 Jan 15:04:05"))})
	} else if f.State != store.StateWaiting || f.Step != 1 {
		return nil // tracked earlier and already under way
	}
	// Also when tracked before (a crash or error between Track and these
	// checks left them undone; they are idempotent):
	// An answer may have been synced before its offer (Inbox and Sent sync
	// concurrently, and across accounts): apply what the store already knows.
	if done, err := d.applyKnownAnswers(a, f); err != nil || done {
		return err
	}
	// The sender may have put it in a Stop folder before its Sent copy was
	// seen (Gmail labels; a first start syncs the folders concurrently).
	if done, err := d.stopIfSeenInStop(f); err != nil || done {
		return err
	}
	if rec.HasFlag(`\Flagged`) || (a.cfg.Folders.StopKeyword != "" && rec.HasFlag(a.cfg.Folders.StopKeyword)) {
		return d.stopIfFlagged(a, rec)
	}
	d.reschedule(f)
	return nil
}

func (d *Daemon) lookback() time.Duration { return lookbackOf(d.cfg) }

func lookbackOf(cfg *config.Config) time.Duration {
	lb := cfg.Lookback.Duration + time.Duration(cfg.Lookback.BusinessDays)*24*time.Hour*7/5
	if lb <= 0 {
		lb = 14 * 24 * time.Hour
	}
	return lb
}

// ownCopySeen handles one of our reminders appearing in Sent: it proves a
// step whose outcome was unknown (crash after SMTP, or a server that files
// submitted mail itself), and in approval mode it means the sender sent the draft.
func (d *Daemon) ownCopySeen(a *account, rec *message.Record) error {
	id, step, ok := message.ParseOwnMessageID(rec.MessageID)
	if !ok {
		return nil
	}
	f, err := d.db.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if f.Step != step || f.SendID != rec.MessageID {
		return nil
	}
	now := d.clk.Now()
	var ev store.Event
	switch f.State {
	case store.StateSending, store.StateUncertain:
		ev = store.EvSent
		if f.State == store.StateUncertain {
			ev = store.EvResolve
		}
	case store.StateDraft:
		ev = store.EvDraftSent
	default:
		return nil
	}
	f, err = d.db.Transition(id, ev, now, "own copy found in Sent", func(f *store.FollowUp) error {
		// Re-check inside the transaction: the sender goroutine may have
		// recorded the outcome since f was read.
		if f.Step != step || f.SendID != rec.MessageID || (f.State != store.StateSending && f.State != store.StateUncertain && f.State != store.StateDraft) {
			return store.ErrNoChange
		}
		return d.advance(a, f, now)
	})
	if errors.Is(err, store.ErrNoChange) || isBadTransition(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d.log.Info("step proven by own copy in Sent", "account", a.cfg.Name, "id", id, "step", step)
	d.emit(Event{Account: a.cfg.Name, FollowUp: id, MessageID: f.MessageID, Kind: "sent", Step: step, Text: "step " + fmt.Sprint(step) + " confirmed by its copy in Sent"})
	d.reschedule(f)
	return nil
}

// advance moves f past its current step: next step waiting, or finished.
// It is called inside a transition's mutate function.
func (d *Daemon) advance(a *account, f *store.FollowUp, now time.Time) error {
	if f.SendID != "" {
		f.Sent = append(f.Sent, f.SendID)
	}
	f.SendID = ""
	f.Attempts = 0
	f.LastSent = now
	f.Step++
	rule := d.cfg.Rule(f.Rule)
	if due, ok := d.dueFor(a, rule, f.Step, now); ok {
		f.State = store.StateWaiting
		f.Due = due
	} else {
		f.State = store.StateFinished
		f.Due = time.Time{}
	}
	return nil
}

// reschedule puts f's due time in the wheel, or takes it out.
func (d *Daemon) reschedule(f *store.FollowUp) {
	if f.State.Pending() {
		d.sched.Set(f.ID, f.Due)
	} else {
		d.sched.Cancel(f.ID)
	}
}

// manualFollowUp: a non-own message in Sent in a tracked thread (or to the
// same recipients with the same subject) restarts that chain from its date.
func (d *Daemon) manualFollowUp(a *account, rec *message.Record) (bool, error) {
	if !d.fromUs(a, rec) {
		return false, nil // a client's message filed in Sent is nobody's follow-up
	}
	cands, err := d.candidates(rec.ThreadIDs(), rec.To, false)
	if err != nil {
		return false, err
	}
	handled := false
	for _, f := range cands {
		if f.State.Terminal() || f.MessageID == rec.MessageID {
			continue
		}
		if !d.cls.ManualFollowUp(rec, candidate(f)) {
			continue
		}
		handled = true
		at := rec.Date
		if at.IsZero() {
			at = d.clk.Now()
		}
		if !at.After(f.LastSent) {
			continue
		}
		fa := d.accounts[f.Account]
		if fa == nil {
			fa = a
		}
		nf, err := d.db.Transition(f.ID, store.EvManual, d.clk.Now(), "sender's own follow-up "+rec.MessageID, func(f *store.FollowUp) error {
			f.LastSent = at
			if due, ok := d.dueFor(fa, d.cfg.Rule(f.Rule), f.Step, at); ok && f.State == store.StateWaiting {
				f.Due = due
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, store.ErrNoChange) || isBadTransition(err) {
				continue
			}
			return true, err
		}
		d.log.Info("manual follow-up restarts chain", "account", a.cfg.Name, "id", nf.ID, "msgid", rec.MessageID, "due", nf.Due)
		d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "manual", Step: nf.Step, Text: "sender followed up by hand; step " + fmt.Sprint(nf.Step) + " now due " + nf.Due.Format("Mon 02 Jan 15:04:05")})
		d.reschedule(nf)
	}
	return handled, nil
}

// fromUs reports whether rec is written by the account or a colleague: a
// configured address, or an address at the account's domain (a send-as
// alias). A message without From counts as ours (a draft-like copy).
func (d *Daemon) fromUs(a *account, rec *message.Record) bool {
	dom := domainOf(strings.ToLower(a.cfg.Address))
	for _, f := range rec.From {
		if _, ours := d.byAddr[f.Addr]; ours || (dom != "" && f.Domain() == dom) {
			return true
		}
	}
	return len(rec.From) == 0
}

// ingestIncoming classifies a message that arrived in a watched mailbox and
// applies it to every follow-up it answers, bounces or holds.
func (d *Daemon) ingestIncoming(a *account, rec *message.Record) error {
	if rec.IsOwn() || d.fromTeam(rec) {
		// A copy of our own reminder (e.g. Bcc to self), or a colleague on
		// our team: never the client's answer.
		return nil
	}
	v, in, err := d.incomingVerdict(a, rec)
	if err != nil {
		// The classifier failed on this message (recordIncoming already
		// logged it): skip it, so it is stored and the folder goes on
		// instead of refetching the same batch for ever.
		return nil
	}
	if err := d.db.PutIncoming(in); err != nil {
		return err
	}
	return d.applyIncoming(a, rec, v)
}

func (d *Daemon) applyIncoming(a *account, rec *message.Record, v classify.Verdict) error {
	var fromAddrs []message.Address
	fromAddrs = append(fromAddrs, rec.From...)
	ids := threadIDs(rec)
	if v.Kind == classify.KindBounce {
		for _, r := range v.FailedRecipients {
			fromAddrs = append(fromAddrs, message.Address{Addr: strings.ToLower(r)})
		}
	}
	cands, err := d.candidates(ids, fromAddrs, v.Kind != classify.KindBounce)
	if err != nil {
		return err
	}
	opt := d.answerOptions()
	now := d.clk.Now()
	for _, f := range cands {
		if f.State.Terminal() && f.State != store.StateFinished && f.State != store.StateUncertain {
			continue
		}
		switch v.Kind {
		case classify.KindBounce:
			if !bounceMatches(f, ids, v) {
				continue
			}
			reason := "bounce: " + strings.Join(v.FailedRecipients, ", ")
			if v.Diagnostic != "" {
				reason += ": " + v.Diagnostic
			}
			if v.AddressGone {
				reason = "address no longer in use: " + strings.Join(v.FailedRecipients, ", ") + ": " + strings.Join(v.Reasons, "; ")
			}
			if _, err := d.terminal(f, store.EvBounce, now, reason, "bounced"); err != nil {
				return err
			}
		case classify.KindAutoReply:
			ok, why := d.cls.Answers(rec, candidate(f), opt)
			if !ok {
				continue
			}
			d.autoReply(a, f, rec, v, why)
		case classify.KindReply:
			ok, why := d.cls.Answers(rec, candidate(f), opt)
			if !ok {
				continue
			}
			who := ""
			if len(rec.From) > 0 {
				who = rec.From[0].Addr
			}
			applied, err := d.terminal(f, store.EvAnswer, now, "answered by "+who+" ("+why+") "+rec.MessageID, "answered")
			if err != nil {
				return err // the batch is not acknowledged: the answer is retried
			}
			if applied {
				d.observeAnswer(f.Account, rec, now)
			}
		}
	}
	return nil
}

// terminal moves f to a terminal state by ev, cancelling any pending step;
// it reports whether it did. A move the state machine refuses (already
// terminal) is no error; a store failure is, so the caller does not
// acknowledge the message and it is processed again after a reconnect.
func (d *Daemon) terminal(f *store.FollowUp, ev store.Event, now time.Time, reason, kind string) (bool, error) {
	nf, err := d.db.Transition(f.ID, ev, now, reason, func(f *store.FollowUp) error {
		switch ev {
		case store.EvAnswer:
			f.State = store.StateAnswered
			f.AnsweredAt = now
		case store.EvBounce:
			f.State = store.StateBounced
		case store.EvStop:
			f.State = store.StateStopped
		}
		f.Outcome = reason
		f.Due = time.Time{}
		return nil
	})
	if isBadTransition(err) || errors.Is(err, store.ErrNoChange) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording %s of follow-up %d: %w", kind, f.ID, err)
	}
	d.sched.Cancel(nf.ID)
	d.log.Info(kind, "account", nf.Account, "id", nf.ID, "msgid", nf.MessageID, "reason", reason)
	d.emit(Event{Account: nf.Account, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: kind, Step: nf.Step, Text: fmt.Sprintf("%q: %s", nf.Subject, reason)})
	return true, nil
}

// autoReply applies an out-of-office: ignored, or (rule policy postpone, a
// readable return date) the contact's follow-ups are held until the next
// business day after the return, capped by the rule's max_postpone.
func (d *Daemon) autoReply(a *account, f *store.FollowUp, rec *message.Record, v classify.Verdict, why string) {
	who := ""
	if len(rec.From) > 0 {
		who = rec.From[0].Addr
	}
	rule := d.cfg.Rule(f.Rule)
	if v.ReturnDate.IsZero() || rule == nil || rule.AutoReply != "postpone" {
		d.log.Info("auto-reply ignored", "account", f.Account, "id", f.ID, "from", who, "reasons", v.Reasons)
		d.emit(Event{Account: f.Account, FollowUp: f.ID, MessageID: f.MessageID, Kind: "autoreply", Step: f.Step,
			Text: fmt.Sprintf("auto-reply from %s on %q is not an answer (%s); chain continues", who, f.Subject, strings.Join(v.Reasons, "; "))})
		return
	}
	fa := d.accounts[f.Account]
	if fa == nil {
		fa = a
	}
	until := fa.cal.NextOpen(fa.cal.AddBusinessDays(v.ReturnDate, 1))
	max := rule.MaxPostpone
	if limit := fa.cal.Add(msgTime(rec), max.Duration, max.BusinessDays); !max.IsZero() && until.After(limit) {
		until = limit
	}
	if err := d.db.SetAway(who, until, "auto-reply "+rec.MessageID); err != nil {
		d.log.Error("recording away window", "from", who, "err", err)
	}
	d.hold(f, until, "auto-reply from "+who+": away until "+until.Format("2006-01-02"))
}

// hold moves a waiting follow-up to held(until).
func (d *Daemon) hold(f *store.FollowUp, until time.Time, reason string) {
	if f.State != store.StateWaiting && f.State != store.StateHeld {
		return
	}
	if !until.After(f.Due) {
		return
	}
	nf, err := d.db.Transition(f.ID, store.EvAway, d.clk.Now(), reason, func(f *store.FollowUp) error {
		f.State = store.StateHeld
		f.HeldUntil = until
		f.Due = until
		return nil
	})
	if err != nil {
		if !isBadTransition(err) && !errors.Is(err, store.ErrNoChange) {
			d.log.Error("holding follow-up", "id", f.ID, "err", err)
		}
		return
	}
	d.reschedule(nf)
	d.log.Info("held", "account", nf.Account, "id", nf.ID, "until", until, "reason", reason)
	d.emit(Event{Account: nf.Account, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "held", Step: nf.Step, Text: reason})
}

// applyKnownAnswers applies stored incoming verdicts to a newly tracked f:
// those citing it, those from (or bouncing) a recipient, and, when
// colleague answers count, those from a recipient's domain. An answer or a
// bounce ends f; an out-of-office is applied as it would have been had it
// come after (a hold, and the contact's away window).
func (d *Daemon) applyKnownAnswers(a *account, f *store.FollowUp) (bool, error) {
	ids := []string{f.MessageID}
	ins, err := d.db.IncomingByThread(ids)
	if err != nil {
		return false, err
	}
	cited := len(ins) // these cite f: written after it, whatever their Date says
	opt := d.answerOptions()
	since := f.SentAt.Add(-time.Hour) // Answers applies the exact window
	domains := map[string]bool{}
	for _, to := range f.To {
		more, err := d.db.IncomingFrom(to.Addr, since)
		if err != nil {
			return false, err
		}
		ins = append(ins, more...)
		if dom := to.Domain(); opt.ColleagueAnswers && dom != "" && !domains[dom] && !d.cls.PublicDomain(dom) {
			domains[dom] = true
			more, err := d.db.IncomingFromDomain(dom, since)
			if err != nil {
				return false, err
			}
			ins = append(ins, more...)
		}
	}
	seen := map[string]bool{}
	for i, in := range ins {
		if seen[in.MessageID] || (i >= cited && in.Date.Before(f.SentAt.Add(-10*time.Minute))) {
			continue
		}
		seen[in.MessageID] = true
		// The stored record has the header fields Answers looks at
		// (Thread-Index, Thread-Topic, References); it is written after
		// the verdict, so fall back to what the verdict kept.
		rec, err := d.db.Message(in.MessageID)
		if err != nil {
			rec = &message.Record{MessageID: in.MessageID, InReplyTo: in.ThreadIDs, Subject: in.Subject, Date: in.Date}
			if in.From != "" {
				rec.From = []message.Address{{Addr: in.From}}
			}
		}
		rec.Role = message.RoleInbox
		switch in.Kind {
		case classify.KindReply.String():
			if ok, why := d.cls.Answers(rec, candidate(f), opt); ok {
				_, err := d.terminal(f, store.EvAnswer, d.clk.Now(), "answered by "+in.From+" ("+why+", seen before the offer was indexed) "+in.MessageID, "answered")
				return err == nil, err
			}
		case classify.KindBounce.String():
			if bounceMatches(f, in.ThreadIDs, classify.Verdict{FailedRecipients: in.Failed}) {
				_, err := d.terminal(f, store.EvBounce, d.clk.Now(), "bounce: "+strings.Join(in.Failed, ", ")+": "+in.Detail, "bounced")
				return err == nil, err
			}
		case classify.KindAutoReply.String():
			if ok, why := d.cls.Answers(rec, candidate(f), opt); ok {
				v := classify.Verdict{Kind: classify.KindAutoReply, ReturnDate: in.Return, Reasons: []string{"auto-reply seen before the offer was indexed"}}
				d.autoReply(a, f, rec, v, why)
				if nf, err := d.db.Get(f.ID); err == nil {
					*f = *nf
				}
			}
		}
	}
	return false, nil
}

func (d *Daemon) answerOptions() classify.AnswerOptions {
	return classify.AnswerOptions{
		ColleagueAnswers:        d.cfg.ColleagueAnswers == nil || *d.cfg.ColleagueAnswers,
		AnyMessageFromRecipient: d.cfg.AnyMessageFromRecipient == nil || *d.cfg.AnyMessageFromRecipient,
		PublicDomains:           d.cfg.PublicDomains,
	}
}

// candidates finds the follow-ups a message may concern: by thread ids, and
// by the given addresses (and their domains when colleague answers count).
func (d *Daemon) candidates(ids []string, addrs []message.Address, domains bool) ([]*store.FollowUp, error) {
	seen := map[uint64]bool{}
	var out []*store.FollowUp
	add := func(fs []*store.FollowUp) {
		for _, f := range fs {
			if !seen[f.ID] {
				seen[f.ID] = true
				out = append(out, f)
			}
		}
	}
	if len(ids) > 0 {
		fs, err := d.db.ByThread(ids)
		if err != nil {
			return nil, err
		}
		add(fs)
	}
	for _, ad := range addrs {
		if ad.Addr == "" {
			continue
		}
		fs, err := d.db.ByRecipient(ad.Addr)
		if err != nil {
			return nil, err
		}
		add(fs)
		if domains && d.answerOptions().ColleagueAnswers {
			if dom := ad.Domain(); dom != "" {
				fs, err := d.db.ByRecipientDomain(dom)
				if err != nil {
					return nil, err
				}
				add(fs)
			}
		}
	}
	return out, nil
}

// openFollowUp returns the non-terminal follow-up tracking msgid itself
// (not one whose reminder has that id), or nil.
func (d *Daemon) openFollowUp(msgid string) (*store.FollowUp, error) {
	f, err := d.db.ByMessageID(msgid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if f.MessageID != msgid || f.State.Terminal() {
		return nil, nil
	}
	return f, nil
}

// stopByFolder: a tracked message found in the Stop folder stops its follow-up.
func (d *Daemon) stopByFolder(rec *message.Record) error {
	f, err := d.openFollowUp(rec.MessageID)
	if f == nil || err != nil {
		return err
	}
	_, err = d.terminal(f, store.EvStop, d.clk.Now(), "moved to "+rec.Mailbox+" by the sender", "stopped")
	return err
}

// metaStopSeen prefixes the store.Meta key (metaStopSeen + Message-ID ->
// mailbox) of a Stop-folder sighting that the stored record does not show
// (rememberStopSighting).
const metaStopSeen = "stop-seen/"

// rememberStopSighting keeps the Stop-folder sighting of a message whose
// stored record names another folder (its first sighting: an INBOX copy
// to self, the Bcc to an opt-in plus address, a Gmail message in INBOX,
// Sent and the Stop label at once) and that is not tracked yet: its Sent
// copy may still come, and stopIfSeenInStop must then find it. A message
// first seen in a Stop folder needs nothing: its stored record says so.
//
// It is written before stopByFolder looks for the follow-up, and
// stopIfSeenInStop reads it after Track: each is its own transaction, so
// whichever runs second sees the other, and a Sent copy tracked meanwhile
// by the Sent folder's goroutine is stopped either way.
func (d *Daemon) rememberStopSighting(a *account, rec, known *message.Record) error {
	switch {
	case known.Role == message.RoleStop:
		return nil // the stored record says so
	case known.Role == message.RoleSent && known.Account == rec.Account:
		return nil // its Sent copy was judged already: stopByFolder decides
	case rec.IsOwn() || !(d.fromUs(a, rec) || d.fromTeam(rec)):
		return nil // never tracked, so nothing to stop
	}
	if now := d.clk.Now(); sentTime(rec, now).Before(now.Add(-d.lookback())) {
		return nil // older than lookback: its Sent copy is never tracked (ingestSent)
	}
	if f, err := d.db.ByMessageID(rec.MessageID); err == nil && f.MessageID == rec.MessageID {
		return nil // tracked already: stopByFolder stops it, if it still runs
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	key := metaStopSeen + rec.MessageID
	if _, err := d.db.Meta(key); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("reading the Stop-folder sighting: %w", err)
	}
	if err := d.db.PutMeta(key, []byte(rec.Mailbox)); err != nil {
		return fmt.Errorf("remembering the Stop-folder sighting: %w", err)
	}
	return nil
}

// forgetStopSighting drops the Stop-folder sighting of msgid once its Sent
// copy was judged and not tracked: nothing will ever read it.
func (d *Daemon) forgetStopSighting(msgid string) error {
	key := metaStopSeen + msgid
	if _, err := d.db.Meta(key); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading the Stop-folder sighting: %w", err)
	}
	if _, err := d.db.ByMessageID(msgid); err == nil {
		return nil // tracked: stopIfSeenInStop consumes it
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := d.db.PutMeta(key, nil); err != nil {
		return fmt.Errorf("forgetting the Stop-folder sighting: %w", err)
	}
	return nil
}

// stopIfSeenInStop stops a newly tracked (or re-tracked) f whose message was
// seen in a Stop folder before its Sent copy: first seen there (the stored
// record), or there after another folder (rememberStopSighting). It reports
// whether f was stopped, or could not be (already terminal). The Stop
// folder of any account counts, as stopByFolder's does for a later move.
func (d *Daemon) stopIfSeenInStop(f *store.FollowUp) (bool, error) {
	key := metaStopSeen + f.MessageID
	var mailbox string
	remembered := false
	stored, err := d.db.Message(f.MessageID)
	switch {
	case err == nil && stored.Role == message.RoleStop:
		mailbox = stored.Mailbox
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false, fmt.Errorf("looking for a Stop-folder copy: %w", err)
	default:
		v, err := d.db.Meta(key)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("looking for a Stop-folder sighting: %w", err)
		}
		mailbox, remembered = string(v), true
	}
	stopped, err := d.terminal(f, store.EvStop, d.clk.Now(), "moved to "+mailbox+" by the sender (seen there before its Sent copy)", "stopped")
	if err != nil {
		return false, err
	}
	if stopped && remembered {
		// Done with: the follow-up is terminal, a later sighting cannot
		// restart it. A failure only leaves a small key behind.
		if err := d.db.PutMeta(key, nil); err != nil {
			d.log.Warn("removing a used Stop-folder sighting", "msgid", f.MessageID, "err", err)
		}
	}
	return true, nil
}

// stopIfFlagged stops the follow-up of a tracked message flagged by its sender.
func (d *Daemon) stopIfFlagged(a *account, rec *message.Record) error {
	kw := a.cfg.Folders.StopKeyword
	flag := ""
	switch {
	case rec.HasFlag(`\Flagged`):
		flag = `\Flagged`
	case kw != "" && rec.HasFlag(kw):
		flag = kw
	default:
		return nil
	}
	f, err := d.openFollowUp(rec.MessageID)
	if f == nil || err != nil {
		return err
	}
	_, err = d.terminal(f, store.EvStop, d.clk.Now(), "marked "+flag+" by the sender", "stopped")
	return err
}

func bounceMatches(f *store.FollowUp, ids []string, v classify.Verdict) bool {
	for _, id := range ids {
		if id == f.MessageID {
			return true
		}
		for _, s := range f.Sent {
			if id == s {
				return true
			}
		}
		if id == f.SendID && id != "" {
			return true
		}
	}
	if len(ids) > 0 {
		return false // it cites a thread, and not this one
	}
	for _, r := range v.FailedRecipients {
		for _, to := range f.To {
			if strings.EqualFold(r, to.Addr) {
				return true
			}
		}
	}
	return false
}

func candidate(f *store.FollowUp) classify.Candidate {
	sent := append([]string(nil), f.Sent...)
	if f.SendID != "" {
		sent = append(sent, f.SendID)
	}
	return classify.Candidate{MessageID: f.MessageID, Sent: sent, To: f.To, Subject: f.Subject, SentAt: f.SentAt, Account: f.Account, ThreadIndex: f.ThreadIndex}
}

// remindable splits addrs into those a reminder may go to and the dropped
// ones: the account's own address and its plus-variants
// (ivan+fu3d@seller.example), and program addresses (classify.AutomaticAddress).
func remindable(a *account, addrs []message.Address) (keep []message.Address, dropped []string) {
	own := strings.ToLower(a.cfg.Address)
	ownLocal, ownDomain, _ := strings.Cut(own, "@")
	ownLocal, _, _ = strings.Cut(ownLocal, "+")
	for _, ad := range addrs {
		addr := strings.ToLower(ad.Addr)
		local, domain, _ := strings.Cut(addr, "@")
		local, _, _ = strings.Cut(local, "+")
		if addr == own || (domain == ownDomain && local == ownLocal) || classify.AutomaticAddress(addr) {
			dropped = append(dropped, addr)
			continue
		}
		keep = append(keep, ad)
	}
	return keep, dropped
}

// threadIDs are the ids a message cites, including a bounce's returned message.
func threadIDs(rec *message.Record) []string {
	ids := rec.ThreadIDs()
	if rec.Report != nil && rec.Report.OriginalMessageID != "" {
		ids = append(ids, rec.Report.OriginalMessageID)
	}
	return ids
}

// sentTime is when a Sent message counts as sent, for tracking and
// lookback: its Date, else (missing, or in the future: a client clock
// ahead) the server's INTERNALDATE, else now.
func sentTime(rec *message.Record, now time.Time) time.Time {
	t := rec.Date
	if t.IsZero() || t.After(now) {
		t = rec.Internal
	}
	if t.IsZero() {
		t = now
	}
	return t
}

func msgTime(rec *message.Record) time.Time {
	if !rec.Date.IsZero() {
		return rec.Date
	}
	return rec.Internal
}

func isBadTransition(err error) bool {
	var te *store.TransitionError
	return errors.As(err, &te)
}

func kindOr(k string) string {
	if k == "" {
		return "message"
	}
	return k
}

func addrs(as []message.Address) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Addr)
	}
	return strings.Join(s, ", ")
}
