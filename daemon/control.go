package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/config"
	"followupd/control"
	"followupd/imapwatch"
	"followupd/message"
	"followupd/store"
)

// startOps binds the control socket and, when metrics_listen is set, the
// metrics endpoint, then serves both. It runs before any watcher starts,
// so a socket or address that cannot be bound fails the start cleanly.
// The returned function stops both (the socket file is removed).
func (d *Daemon) startOps(ctx context.Context) (stop func(), err error) {
	cfg := d.Config()
	path := cfg.ControlSocket
	if path == "" {
		path = config.DefaultControlSocket(cfg.StateDir)
	}
	srv, err := control.Listen(path, &ctlBackend{d: d}, d.log.With("pkg", "control"))
	if err != nil {
		return nil, err
	}
	metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	var metricsDone <-chan struct{}
	var bound string
	if cfg.MetricsListen != "" {
		bound, metricsDone, err = d.ops.metrics.Serve(metricsCtx, cfg.MetricsListen, d.log.With("pkg", "metrics"))
		if err != nil {
			stopMetrics()
			_ = srv.Close(context.Background())
			return nil, err
		}
		d.log.Info("serving metrics", "addr", "http://"+bound+"/metrics")
	}
	d.ops.mu.Lock()
	d.ops.socket, d.ops.metricsAddr = path, bound
	d.ops.mu.Unlock()
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(); err != nil {
			d.log.Error("control socket stopped", "err", err)
		}
	}()
	d.log.Info("control socket ready", "socket", path)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Close(sctx); err != nil {
			d.log.Warn("closing control socket", "err", err)
		}
		<-served
		stopMetrics()
		if metricsDone != nil {
			<-metricsDone
		}
		d.ops.mu.Lock()
		d.ops.socket, d.ops.metricsAddr = "", ""
		d.ops.mu.Unlock()
	}, nil
}

// ctlBackend answers the control CLI (control.Backend). Its methods run on
// the control server's connection goroutines; every change goes through
// store.Transition, so it serialises with the daemon's own decisions in
// bbolt, and the wheel is updated after the commit.
type ctlBackend struct{ d *Daemon }

func (b *ctlBackend) Status(ctx context.Context) (*control.Status, error) {
	d := b.d.current()
	d.ops.mu.Lock()
	st := &control.Status{Version: d.opt.Version, Protocol: control.Version, Started: d.ops.started, Now: d.clk.Now(),
		Ready: isClosed(d.ready), Socket: d.ops.socket, Metrics: d.ops.metricsAddr, Counts: map[string]int{}}
	d.ops.mu.Unlock()
	if st.Version == "" {
		st.Version = "dev"
	}
	for _, name := range sortedKeys(d.accounts) {
		a := d.accounts[name]
		ca := control.Account{Name: name, Address: a.cfg.Address, Mode: string(d.cfg.RuleMode(a.cfg, nil)), Folders: []control.Folder{}}
		if a.watcher != nil {
			for _, f := range a.watcher.Status() {
				ca.Folders = append(ca.Folders, control.Folder{Mailbox: f.Mailbox, Role: f.Role.String(), Connected: f.Connected,
					LastSync: f.LastSync, Reconnects: f.Reconnects, LastError: f.LastError})
			}
		}
		st.Accounts = append(st.Accounts, ca)
	}
	counts, err := d.db.Counts()
	if err != nil {
		return nil, err
	}
	for s, n := range counts {
		st.Counts[s.String()] = n
	}
	err = d.db.PendingDue(func(id uint64, due time.Time) bool {
		st.NextDue = &control.Due{ID: id, Due: due}
		return false
	})
	return st, err
}

func (b *ctlBackend) List(ctx context.Context, q control.ListQuery) ([]control.FollowUp, error) {
	d := b.d.current()
	f := store.Filter{Account: q.Account, Rule: q.Rule}
	if q.State != "" {
		s, err := store.ParseState(q.State)
		if err != nil || s == store.StateNone {
			return nil, control.Errorf(control.CodeBadRequest, "unknown state %q (states: %s)", q.State, strings.Join(stateNames(), ", "))
		}
		f.State = s
	}
	fus, err := d.db.List(f)
	if err != nil {
		return nil, err
	}
	out := make([]control.FollowUp, 0, len(fus))
	for _, fu := range fus {
		out = append(out, d.ctlFollowUp(fu))
	}
	return out, nil
}

func (b *ctlBackend) Show(ctx context.Context, id uint64) (*control.Thread, error) {
	d := b.d.current()
	f, err := d.get(id)
	if err != nil {
		return nil, err
	}
	led, err := d.db.Ledger(id)
	if err != nil {
		return nil, err
	}
	th := &control.Thread{FollowUp: d.ctlFollowUp(f), History: []control.HistoryEntry{}, Ledger: []control.LedgerEntry{}}
	for _, h := range f.History {
		th.History = append(th.History, control.HistoryEntry{At: h.At, Event: h.Event.String(), From: h.From.String(), To: h.To.String(), Step: h.Step, Reason: h.Reason})
	}
	for _, e := range led {
		th.Ledger = append(th.Ledger, control.LedgerEntry{Step: e.Step, MessageID: e.MessageID, State: e.State.String(), Intent: e.Intent, Done: e.Done, Detail: e.Detail})
	}
	return th, nil
}

// CancelReason is the history reason of `followupd cancel`.
const CancelReason = "cancelled via CLI"

func (b *ctlBackend) Cancel(ctx context.Context, id uint64) (*control.FollowUp, error) {
	d := b.d.current()
	nf, err := d.db.Transition(id, store.EvStop, d.clk.Now(), CancelReason, func(f *store.FollowUp) error {
		if f.State.Terminal() && f.State != store.StateUncertain {
			return errTerminal
		}
		f.State = store.StateStopped
		f.Outcome = CancelReason
		f.Due = time.Time{}
		return nil
	})
	if err != nil {
		return nil, d.ctlErr(id, "cancel", err)
	}
	d.sched.Cancel(id)
	d.log.Info("stopped", "account", nf.Account, "id", id, "msgid", nf.MessageID, "reason", CancelReason)
	d.emit(Event{Account: nf.Account, FollowUp: id, MessageID: nf.MessageID, Kind: "stopped", Step: nf.Step, Text: fmt.Sprintf("%q: %s", nf.Subject, CancelReason)})
	out := d.ctlFollowUp(nf)
	return &out, nil
}

func (b *ctlBackend) Snooze(ctx context.Context, id uint64, r control.SnoozeRequest) (*control.FollowUp, error) {
	d := b.d.current()
	var by config.Delay
	if err := by.UnmarshalText([]byte(r.By)); err != nil || by.IsZero() {
		return nil, control.Errorf(control.CodeBadRequest, "snooze by %q: want e.g. \"36h\", \"2 days\" or \"3 business days\"", r.By)
	}
	now := d.clk.Now()
	reason := "snoozed via CLI by " + by.String()
	nf, err := d.db.Transition(id, store.EvSnooze, now, reason, func(f *store.FollowUp) error {
		if !f.State.Pending() {
			return errNotPending
		}
		a := d.accounts[f.Account]
		if a == nil {
			return errNoAccount
		}
		base := f.Due
		if base.Before(now) {
			base = now
		}
		due := a.cal.NextOpen(a.cal.Add(base, by.Duration, by.BusinessDays))
		f.Due = due
		if f.State == store.StateHeld {
			f.HeldUntil = due
		}
		return nil
	})
	if err != nil {
		return nil, d.ctlErr(id, "snooze", err)
	}
	d.reschedule(nf)
	d.log.Info("snoozed", "account", nf.Account, "id", id, "msgid", nf.MessageID, "step", nf.Step, "due", nf.Due)
	d.emit(Event{Account: nf.Account, FollowUp: id, MessageID: nf.MessageID, Kind: "snoozed", Step: nf.Step, Text: fmt.Sprintf("%q: %s; step %d due %s", nf.Subject, reason, nf.Step, nf.Due.Format("Mon 02 Jan 15:04"))})
	out := d.ctlFollowUp(nf)
	return &out, nil
}

func (b *ctlBackend) Resolve(ctx context.Context, id uint64, r control.ResolveRequest) (*control.FollowUp, error) {
	d := b.d.current()
	now := d.clk.Now()
	var ev store.Event
	var reason string
	switch r.Outcome {
	case "sent":
		ev, reason = store.EvResolve, "resolved via CLI: the uncertain step was sent"
	case "unsent":
		ev, reason = store.EvRetry, "resolved via CLI: the uncertain step was not sent; it waits again"
	default:
		return nil, control.Errorf(control.CodeBadRequest, "resolve: outcome %q: want sent or unsent", r.Outcome)
	}
	nf, err := d.db.Transition(id, ev, now, reason, func(f *store.FollowUp) error {
		if f.State != store.StateUncertain {
			return errNotUncertain
		}
		a := d.accounts[f.Account]
		if a == nil {
			return errNoAccount
		}
		if ev == store.EvResolve {
			return d.advance(a, f, now)
		}
		f.State = store.StateWaiting
		f.SendID = ""
		f.Attempts = 0
		f.Due = a.cal.NextOpen(now)
		return nil
	})
	if err != nil {
		return nil, d.ctlErr(id, "resolve", err)
	}
	d.reschedule(nf)
	d.log.Info("resolved", "account", nf.Account, "id", id, "msgid", nf.MessageID, "outcome", r.Outcome, "next", nf.State)
	d.emit(Event{Account: nf.Account, FollowUp: id, MessageID: nf.MessageID, Kind: "resolved", Step: nf.Step, Text: fmt.Sprintf("%q: %s", nf.Subject, reason)})
	out := d.ctlFollowUp(nf)
	return &out, nil
}

// ApproveReason is the history reason of `followupd approve`.
const ApproveReason = "approved via CLI: the draft was removed from Drafts; followupd sends the step itself"

// Approve sends drafted steps by the daemon (approval mode). The draft is
// the sender's to send too, so the two must never both go out. For each
// step, on one IMAP connection per account:
//
//  1. the draft (our Message-ID, f.SendID) is deleted from Drafts first;
//  2. Sent is searched for it: a copy there means the sender sent it from
//     the mail client (a client files the Sent copy before it deletes the
//     draft) and the watcher has not processed it yet, so it is recorded
//     as the sender's send (draft-sent) and not sent again;
//  3. only a draft that was found and removed is approved: the step moves
//     back to waiting, due now, marked approved (store.EvApprove), and goes
//     out through the normal send path (send window, pacing, the
//     server-side reply check, a fresh intent) over SMTP, not into Drafts
//     (submit honours FollowUp.Approved). A draft in neither folder was
//     deleted by the sender (or edited and sent under another Message-ID):
//     nothing is sent and the hourly draft check settles it.
//
// Deleting before the transition means a failure in between (crash, store
// error) leaves a drafted step without its draft, which the draft check
// later skips: a step lost, never a step sent twice. One window stays
// open: a person pressing Send in the mail client in the same second as
// the approval, so that the client has submitted the draft over SMTP but
// not yet filed its Sent copy (nor deleted the draft) when steps 1 and 2
// run. Nothing on the server tells that moment apart from an unsent draft.
func (b *ctlBackend) Approve(ctx context.Context, r control.ApproveRequest) (*control.ApproveResult, error) {
	d := b.d.current()
	ids := r.IDs
	if r.All {
		fus, err := d.db.List(store.Filter{Account: r.Account, State: store.StateDraft})
		if err != nil {
			return nil, err
		}
		for _, f := range fus {
			ids = append(ids, f.ID)
		}
	}
	res := &control.ApproveResult{Approved: []control.FollowUp{}}
	refuse := func(id uint64, reason string) {
		res.Refused = append(res.Refused, control.Refusal{ID: id, Reason: reason})
	}
	byAcct := map[string][]*store.FollowUp{}
	for _, id := range ids {
		f, err := d.db.Get(id)
		if err == nil && f.State != store.StateDraft {
			err = errNotDraft
		}
		if err == nil && d.accounts[f.Account] == nil {
			err = errNoAccount
		}
		if err != nil {
			refuse(id, d.ctlErr(id, "approve", err).Error())
			continue
		}
		byAcct[f.Account] = append(byAcct[f.Account], f)
	}
	for _, name := range sortedKeys(byAcct) {
		a, fs := d.accounts[name], byAcct[name]
		done := 0
		err := d.withIMAP(ctx, a, func(c *imapclient.Client) error {
			sentBox, draftsBox, err := d.folders(ctx, c, a)
			if err != nil {
				return err
			}
			if draftsBox == "" {
				return errNoFolder(a, "Drafts")
			}
			for _, f := range fs {
				out, err := d.approveOn(ctx, c, a, sentBox, draftsBox, f)
				if err != nil {
					return err
				}
				done++
				switch {
				case out.approved != nil:
					res.Approved = append(res.Approved, d.ctlFollowUp(out.approved))
				default:
					refuse(f.ID, out.refusal)
				}
			}
			return nil
		})
		if err != nil {
			d.log.Warn("approving drafts", "account", name, "err", err)
			for _, f := range fs[done:] {
				refuse(f.ID, fmt.Sprintf("account %s: the draft could not be taken out of Drafts (%v); nothing was sent, try again", name, err))
			}
		}
	}
	return res, nil
}

// approveOutcome is what approving one drafted step came to: approved (the
// follow-up after the transition), or refused with a reason.
type approveOutcome struct {
	approved *store.FollowUp
	refusal  string
}

// approveOn approves one drafted step on an open connection (see Approve).
// It returns an error only when the connection failed before anything was
// decided for f.
func (d *Daemon) approveOn(ctx context.Context, c *imapclient.Client, a *account, sentBox, draftsBox string, f *store.FollowUp) (approveOutcome, error) {
	log := d.log.With("account", a.cfg.Name, "id", f.ID, "msgid", f.MessageID, "step", f.Step, "draft", f.SendID)
	sendID := f.SendID
	var out approveOutcome
	sentBySender := func() (approveOutcome, error) {
		if err := d.draftSentBySender(a, f, "approve found draft "+sendID+" in Sent: the sender sent it; not sent again"); err != nil {
			out.refusal = fmt.Sprintf("the sender already sent this draft (its copy is in Sent), but recording that failed: %v", err)
			return out, nil
		}
		out.refusal = "the sender already sent this draft from the mail client (its copy is in Sent): recorded as sent, not sent again"
		return out, nil
	}
	// Sent first, with nothing touched yet: a search that fails refuses
	// the approval as it is (try again), never approves blindly.
	if sentBox != "" {
		inSent, err := imapwatch.FindMessageID(ctx, c, sentBox, sendID)
		if err != nil {
			return approveOutcome{}, fmt.Errorf("looking for draft %s in %s: %w", sendID, sentBox, err)
		}
		if inSent {
			return sentBySender()
		}
	}
	removed, err := d.deleteDraft(ctx, c, a, draftsBox, sendID)
	if err != nil {
		return approveOutcome{}, fmt.Errorf("removing draft %s from %s: %w", sendID, draftsBox, err)
	}
	// Again after the delete: a mail client files the Sent copy before it
	// deletes the draft, so the sender may have sent it between the two.
	if sentBox != "" {
		inSent, err := imapwatch.FindMessageID(ctx, c, sentBox, sendID)
		switch {
		case err != nil && removed == 0:
			return approveOutcome{}, fmt.Errorf("looking for draft %s in %s: %w", sendID, sentBox, err)
		case err != nil:
			log.Warn("approve: draft removed, Sent could not be searched again; nothing sent", "err", err)
			out.refusal = fmt.Sprintf("the draft was taken out of %s, but Sent could not be searched again to make sure the sender had not just sent it (%v): nothing was sent; the next draft check records the step as sent if its copy is in Sent, else as skipped", draftsBox, err)
			return out, nil
		case inSent:
			return sentBySender()
		}
	}
	if removed == 0 {
		log.Info("approve: draft neither in Drafts nor in Sent; nothing sent")
		out.refusal = fmt.Sprintf("%v: %s is neither in %s nor in Sent (deleted, or edited and sent under another Message-ID); nothing was sent", errDraftGone, sendID, draftsBox)
		return out, nil
	}
	now := d.clk.Now()
	nf, err := d.db.Transition(f.ID, store.EvApprove, now, ApproveReason, func(f *store.FollowUp) error {
		if f.State != store.StateDraft || f.SendID != sendID {
			return errNotDraft
		}
		f.State = store.StateWaiting
		f.Approved = f.Step
		f.Due = a.cal.NextOpen(now)
		return nil
	})
	if err != nil {
		// The draft is out of Drafts either way: for an answered or
		// stopped follow-up that is what should happen; otherwise the
		// draft check finds it missing and skips the step.
		log.Warn("approve: draft removed, recording the approval failed", "err", err)
		out.refusal = d.ctlErr(f.ID, "approve", err).Error() + " (its draft was removed from Drafts)"
		return out, nil
	}
	d.reschedule(nf)
	log.Info("approved", "due", nf.Due)
	d.emit(Event{Account: nf.Account, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "approved", Step: nf.Step, Text: fmt.Sprintf("reminder %d for %q approved; goes out %s", nf.Step, nf.Subject, nf.Due.Format("Mon 02 Jan 15:04"))})
	out.approved = nf
	return out, nil
}

// draftSentBySender records that the sender sent f's drafted step from the
// mail client (its copy, our Message-ID, is in Sent): draft-sent, the
// chain moves on. The same transition as the watcher's (ownCopySeen), for
// when the copy is found before the watcher processed it.
func (d *Daemon) draftSentBySender(a *account, f *store.FollowUp, reason string) error {
	sendID, step := f.SendID, f.Step
	now := d.clk.Now()
	nf, err := d.db.Transition(f.ID, store.EvDraftSent, now, reason, func(f *store.FollowUp) error {
		if f.State != store.StateDraft || f.SendID != sendID {
			return store.ErrNoChange // recorded meanwhile (the watcher), or answered
		}
		return d.advance(a, f, now)
	})
	if errors.Is(err, store.ErrNoChange) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording draft %s as sent by the sender: %w", sendID, err)
	}
	d.log.Info("draft sent by the sender", "account", a.cfg.Name, "id", nf.ID, "step", step, "next", nf.State)
	d.emit(Event{Account: a.cfg.Name, FollowUp: nf.ID, MessageID: nf.MessageID, Kind: "sent", Step: step,
		Text: fmt.Sprintf("reminder %d for %q sent by the sender from Drafts", step, nf.Subject)})
	d.reschedule(nf)
	return nil
}

// deleteDrafts removes drafts (by Message-ID) from a's Drafts.
func (d *Daemon) deleteDrafts(ctx context.Context, a *account, msgids []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return d.withIMAP(ctx, a, func(c *imapclient.Client) error {
		_, drafts, err := d.folders(ctx, c, a)
		if err != nil {
			return err
		}
		if drafts == "" {
			return errNoFolder(a, "Drafts")
		}
		var errs []error
		for _, id := range msgids {
			if _, err := d.deleteDraft(ctx, c, a, drafts, id); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

func (b *ctlBackend) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return b.d.db.Backup(w)
}

// Refusals of the control commands; ctlErr turns them into control errors.
var (
	errTerminal     = errors.New("it has ended")
	errNotPending   = errors.New("only a waiting or held follow-up can be snoozed")
	errNotUncertain = errors.New("only an uncertain step can be resolved")
	errNotDraft     = errors.New("only a drafted step (state draft, approval mode) can be approved")
	errNoAccount    = errors.New("its account is no longer configured")
	errDraftGone    = errors.New("draft gone")
)

// ctlErr explains a failed control transition: not found, refused by the
// state (with the state), or internal.
func (d *Daemon) ctlErr(id uint64, what string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return control.Errorf(control.CodeNotFound, "no follow-up %d (see `followupd list`)", id)
	}
	var te *store.TransitionError
	if errors.As(err, &te) || errors.Is(err, errTerminal) || errors.Is(err, errNotPending) ||
		errors.Is(err, errNotUncertain) || errors.Is(err, errNotDraft) || errors.Is(err, errNoAccount) {
		state := "?"
		if f, gerr := d.db.Get(id); gerr == nil {
			state = f.State.String()
			if f.Outcome != "" {
				state += " (" + f.Outcome + ")"
			}
		}
		why := ""
		if te == nil {
			for _, e := range []error{errTerminal, errNotPending, errNotUncertain, errNotDraft, errNoAccount} {
				if errors.Is(err, e) {
					why = ": " + e.Error()
				}
			}
		}
		return control.Errorf(control.CodeConflict, "cannot %s follow-up %d: it is %s%s", what, id, state, why)
	}
	return err
}

// get loads follow-up id, as a control error when there is none.
func (d *Daemon) get(id uint64) (*store.FollowUp, error) {
	f, err := d.db.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, control.Errorf(control.CodeNotFound, "no follow-up %d (see `followupd list`)", id)
	}
	return f, err
}

func (d *Daemon) ctlFollowUp(f *store.FollowUp) control.FollowUp {
	return control.FollowUp{
		ID: f.ID, Account: f.Account, MessageID: f.MessageID, Rule: f.Rule, Kind: f.Kind, Subject: f.Subject,
		From: f.From.Addr, To: addrList(f.To), Cc: addrList(f.Cc), SentAt: f.SentAt,
		State: f.State.String(), Step: f.Step, Steps: len(d.steps(d.cfg.Rule(f.Rule))),
		Due: f.Due, HeldUntil: f.HeldUntil, LastSent: f.LastSent, SendID: f.SendID, Attempts: f.Attempts,
		Sent: f.Sent, Outcome: f.Outcome, AnsweredAt: f.AnsweredAt, Approved: f.Approved,
	}
}

func addrList(as []message.Address) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Addr)
	}
	return out
}

func stateNames() []string {
	var out []string
	for s := store.StateWaiting; s <= store.StateUncertain; s++ {
		out = append(out, s.String())
	}
	return out
}
