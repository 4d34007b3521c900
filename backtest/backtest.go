package backtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"followupd/classify"
	"followupd/config"
	"followupd/daemon"
	"followupd/imapwatch"
	"followupd/message"
	"followupd/store"
)

// Options tune a backtest. Since is required.
type Options struct {
	// Since is where the replayed history starts; messages dated earlier
	// are not replayed.
	Since time.Time
	// Until is where it ends (steps due up to then fire); zero = now.
	Until time.Time
	// Logger receives the daemon's decision log (Info: every decision).
	// Nil discards.
	Logger *slog.Logger
	// TempDir holds the scratch store; "" = os.TempDir().
	TempDir string
	// DialTimeout bounds connect + TLS + login per account; zero = 30s.
	DialTimeout time.Duration
}

// Reminder is one step the daemon would have sent.
type Reminder struct {
	Step int
	At   time.Time
}

// Skip is one step the daemon would not have sent, and why.
type Skip struct {
	Step   int
	At     time.Time
	Reason string
}

// Thread is one message the daemon would have tracked, and what happened
// to it in the replay.
type Thread struct {
	ID        uint64
	MessageID string
	Account   string
	Rule      string
	Subject   string
	To        []string
	Sent      time.Time
	Reminders []Reminder
	Skipped   []Skip
	// Outcome is the follow-up's final state: answered, bounced, stopped,
	// failed, finished (every step sent, no answer), waiting or held (a step
	// still due after Until).
	Outcome string
	// Answered is when an answer arrived (zero: none).
	Answered time.Time
	// NextDue is the next step's due time when Outcome is waiting or held.
	NextDue time.Time
	// Loc is the account's time zone, for printing.
	Loc *time.Location
}

// AnsweredAfterReminder reports whether the answer came after at least one
// would-be reminder.
func (t *Thread) AnsweredAfterReminder() bool {
	return !t.Answered.IsZero() && len(t.Reminders) > 0 && !t.Answered.Before(t.Reminders[0].At)
}

// Result is what a backtest found.
type Result struct {
	Since, Until time.Time
	Accounts     int
	Messages     int // records replayed
	Ignored      int // records dated outside [Since, Until]
	Threads      []*Thread
}

// Run fetches every account's history since opt.Since (read-only) and
// replays it.
func Run(ctx context.Context, cfg *config.Config, opt Options) (*Result, error) {
	if opt.Since.IsZero() {
		return nil, errors.New("backtest: no start time (since)")
	}
	if opt.Until.IsZero() {
		opt.Until = time.Now()
	}
	cls, err := classify.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("backtest: compiling rules: %w", err)
	}
	recs, err := Fetch(ctx, cfg, opt.Since, cls.NeedsBody, opt.DialTimeout)
	if err != nil {
		return nil, err
	}
	return Replay(ctx, cfg, recs, opt)
}

// Fetch reads the INBOX, Sent and (when configured) Stop folders of every
// account with imapwatch.FetchSince: EXAMINE, UID SEARCH SINCE, BODY.PEEK.
// Records get Account (the account's name) and Role.
func Fetch(ctx context.Context, cfg *config.Config, since time.Time, needBody func(*message.Record) bool, timeout time.Duration) ([]*message.Record, error) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	var all []*message.Record
	for i := range cfg.Accounts {
		ac := &cfg.Accounts[i]
		recs, err := fetchAccount(ctx, ac, since, needBody, timeout)
		if err != nil {
			return nil, fmt.Errorf("backtest: account %s: %w", ac.Name, err)
		}
		all = append(all, recs...)
	}
	return all, nil
}

func fetchAccount(ctx context.Context, ac *config.Account, since time.Time, needBody func(*message.Record) bool, timeout time.Duration) ([]*message.Record, error) {
	pw, err := ac.Password()
	if err != nil {
		return nil, err
	}
	c, err := imapwatch.Dial(ctx, ac, pw, imapwatch.DialOptions{Timeout: timeout})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	fs, err := imapwatch.Discover(ctx, c, ac)
	if err != nil {
		return nil, err
	}
	if fs.Sent == "" {
		return nil, imapwatch.ErrNoSentFolder
	}
	folders := []struct {
		name string
		role message.Role
	}{{fs.Sent, message.RoleSent}, {fs.Inbox, message.RoleInbox}}
	if ac.Folders.Stop != "" {
		folders = append(folders, struct {
			name string
			role message.Role
		}{ac.Folders.Stop, message.RoleStop})
	}
	var out []*message.Record
	for _, f := range folders {
		// classify.NeedsBody decides by the folder's role: set it first.
		need := func(r *message.Record) bool {
			r.Account, r.Role = ac.Name, f.role
			return needBody != nil && needBody(r)
		}
		err := imapwatch.FetchSince(ctx, c, f.name, since, need, func(recs []*message.Record) error {
			for _, r := range recs {
				r.Account, r.Role = ac.Name, f.role
			}
			out = append(out, recs...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := c.Logout().Wait(); err != nil {
		return out, nil // the history is complete; a failed LOGOUT changes nothing
	}
	return out, nil
}

// roleRank orders records of the same instant: the sent message first (a
// reply cannot precede it), then the Stop folder's copy, then incoming mail.
func roleRank(r message.Role) int {
	switch r {
	case message.RoleSent:
		return 0
	case message.RoleStop:
		return 1
	}
	return 2
}

func msgTime(r *message.Record) time.Time {
	if !r.Date.IsZero() {
		return r.Date
	}
	return r.Internal
}

// Replay runs recs (any order) through the daemon's decisions in time order
// with a scratch store, and collects the result.
func Replay(ctx context.Context, cfg *config.Config, recs []*message.Record, opt Options) (*Result, error) {
	if opt.Until.IsZero() {
		opt.Until = time.Now()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	accIndex := make(map[string]int)
	for i := range cfg.Accounts {
		accIndex[cfg.Accounts[i].Name] = i
	}
	res := &Result{Since: opt.Since, Until: opt.Until, Accounts: len(cfg.Accounts)}
	var hist []*message.Record
	for _, r := range recs {
		t := msgTime(r)
		if t.Before(opt.Since) || t.After(opt.Until) {
			res.Ignored++
			continue
		}
		hist = append(hist, r)
	}
	slices.SortStableFunc(hist, func(a, b *message.Record) int {
		return cmp.Or(msgTime(a).Compare(msgTime(b)),
			cmp.Compare(roleRank(a.Role), roleRank(b.Role)),
			cmp.Compare(accIndex[a.Account], accIndex[b.Account]),
			cmp.Compare(a.Mailbox, b.Mailbox),
			cmp.Compare(a.UID, b.UID))
	})
	res.Messages = len(hist)

	dir, err := os.MkdirTemp(opt.TempDir, "followupd-backtest-")
	if err != nil {
		return nil, fmt.Errorf("backtest: scratch store: %w", err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "backtest.db"), store.Options{Logger: opt.Logger, NoSync: true})
	if err != nil {
		return nil, fmt.Errorf("backtest: scratch store: %w", err)
	}
	defer db.Close()

	start := opt.Since
	if start.IsZero() && len(hist) > 0 {
		start = msgTime(hist[0])
	}
	rp, err := daemon.NewReplayer(cfg, db, start, daemon.Options{Logger: opt.Logger})
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	for _, r := range hist {
		if err := rp.Ingest(ctx, r); err != nil {
			return nil, fmt.Errorf("backtest: replaying %s from %s/%s: %w", r.MessageID, r.Account, r.Mailbox, err)
		}
	}
	if err := rp.Advance(ctx, opt.Until); err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	pending := rp.Pending()

	fus, err := db.List(store.Filter{})
	if err != nil {
		return nil, fmt.Errorf("backtest: reading results: %w", err)
	}
	for _, f := range fus {
		th := &Thread{ID: f.ID, MessageID: f.MessageID, Account: f.Account, Rule: f.Rule, Subject: f.Subject,
			Sent: f.SentAt, Outcome: f.State.String(), Answered: f.AnsweredAt, Loc: time.UTC}
		if ac := cfg.Account(f.Account); ac != nil {
			th.Loc = cfg.Location(ac)
		}
		for _, to := range f.To {
			th.To = append(th.To, to.Addr)
		}
		for _, h := range f.History {
			switch h.Event {
			case store.EvSent:
				th.Reminders = append(th.Reminders, Reminder{Step: h.Step, At: h.At})
			case store.EvSkip, store.EvPermFail:
				th.Skipped = append(th.Skipped, Skip{Step: h.Step, At: h.At, Reason: h.Reason})
			}
		}
		if f.State != store.StateAnswered {
			th.Answered = time.Time{}
		}
		if due, ok := pending[f.ID]; ok && f.State.Pending() {
			th.NextDue = due
		}
		res.Threads = append(res.Threads, th)
	}
	slices.SortFunc(res.Threads, func(a, b *Thread) int {
		return cmp.Or(a.Sent.Compare(b.Sent), cmp.Compare(a.ID, b.ID))
	})
	return res, nil
}
