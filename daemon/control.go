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
const ApproveReason = "approved via CLI: followupd sends the step itself; the draft is removed from Drafts"

// Approve moves each drafted step back to waiting, due now, marked
// approved (store.EvApprove): it then goes out through the normal send path
// (send window, pacing, the server-side reply check, a fresh intent), over
// SMTP rather than into Drafts (submit honours FollowUp.Approved). The
// draft itself is deleted so the sender cannot send it a second time.
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
	drafts := map[string][]string{} // account -> draft Message-IDs to delete
	for _, id := range ids {
		now := d.clk.Now()
		var draftID string
		nf, err := d.db.Transition(id, store.EvApprove, now, ApproveReason, func(f *store.FollowUp) error {
			if f.State != store.StateDraft {
				return errNotDraft
			}
			a := d.accounts[f.Account]
			if a == nil {
				return errNoAccount
			}
			draftID = f.SendID
			f.State = store.StateWaiting
			f.Approved = f.Step
			f.Due = a.cal.NextOpen(now)
			return nil
		})
		if err != nil {
			res.Refused = append(res.Refused, control.Refusal{ID: id, Reason: d.ctlErr(id, "approve", err).Error()})
			continue
		}
		d.reschedule(nf)
		drafts[nf.Account] = append(drafts[nf.Account], draftID)
		d.log.Info("approved", "account", nf.Account, "id", id, "msgid", nf.MessageID, "step", nf.Step, "due", nf.Due)
		d.emit(Event{Account: nf.Account, FollowUp: id, MessageID: nf.MessageID, Kind: "approved", Step: nf.Step, Text: fmt.Sprintf("reminder %d for %q approved; goes out %s", nf.Step, nf.Subject, nf.Due.Format("Mon 02 Jan 15:04"))})
		res.Approved = append(res.Approved, d.ctlFollowUp(nf))
	}
	for _, name := range sortedKeys(drafts) {
		a := d.accounts[name]
		if a == nil {
			continue
		}
		if err := d.deleteDrafts(ctx, a, drafts[name]); err != nil {
			d.log.Warn("removing approved drafts", "account", name, "err", err)
			res.Warnings = append(res.Warnings, fmt.Sprintf("account %s: the approved drafts could not be removed from Drafts (%v): delete them by hand so they are not sent twice", name, err))
		}
	}
	return res, nil
}

// deleteDrafts removes the approved drafts (by Message-ID) from a's Drafts.
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
			if _, err := imapwatch.DeleteMessageID(ctx, c, drafts, id); err != nil {
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
