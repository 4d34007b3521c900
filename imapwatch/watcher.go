package imapwatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"followupd/clock"
	"followupd/config"
	"followupd/message"
)

// State is what is remembered of one watched folder between connections
// (it maps onto store.SyncState).
type State struct {
	UIDValidity   uint32
	LastUID       uint32 // highest UID the Sink accepted
	HighestModSeq uint64 // CONDSTORE; 0 when the server has none
}

// Sink receives what the Watcher sees. Its methods are called
// concurrently for different folders, but never concurrently for one
// folder: during a sync, HandleMessages and SaveState run on a goroutine
// of their own while the folder goroutine fetches the next batch.
type Sink interface {
	// HandleMessages receives new messages of one folder in UID order (a
	// batch per FETCH chunk). Each rec has Account (account name), Mailbox,
	// Role (RoleInbox/RoleSent/RoleStop), UIDValidity, UID, Flags, Internal
	// filled. If it returns an error the batch is NOT acknowledged (LastUID
	// not advanced) and is retried after a reconnect: the sink must
	// therefore be idempotent (identity is the Message-ID).
	HandleMessages(ctx context.Context, recs []*message.Record) error
	// HandleFlags reports changed flags of already-seen messages (Sent and
	// Stop folders; via FETCH FLAGS unilateral updates or a CONDSTORE
	// CHANGEDSINCE resync).
	HandleFlags(ctx context.Context, account, mailbox string, role message.Role, uidvalidity, uid uint32, flags []string) error
	LoadState(account, mailbox string) (State, error)
	SaveState(account, mailbox string, s State) error
}

// StateSink is a Sink that stores a fetched batch and the folder's State
// after it in one commit (one fsync per batch instead of two; bench/
// NOTES.md). A Watcher whose Sink implements it calls HandleBatch instead
// of HandleMessages followed by SaveState for each batch of a sync, also
// for a batch whose UIDs were all expunged (recs empty). st.LastUID is the
// batch's highest UID: the sink must store it only together with (after)
// the batch's records, and not at all when it returns an error, so LastUID
// never runs ahead of what was processed. SaveState is still called for
// state that moves without a batch (a new UIDVALIDITY, HIGHESTMODSEQ).
type StateSink interface {
	Sink
	HandleBatch(ctx context.Context, account, mailbox string, recs []*message.Record, st State) error
}

// Defaults for Options fields left zero.
const (
	DefaultBatchSize   = 1000
	DefaultIdleRestart = 25 * time.Minute // servers may drop IDLE after 30 (RFC 2177)
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	// PollInterval is how often a server without IDLE is asked (NOOP).
	PollInterval = 30 * time.Second
	// MaxBodyFetch caps BODY.PEEK[] when Options.NeedBody asks for a body.
	MaxBodyFetch = 512 << 10
	// MaxBodyText caps the decoded body text handed to message.Parse.
	MaxBodyText = 64 << 10
)

// Options tunes a Watcher. Zero values get the defaults above.
type Options struct {
	Clock  clock.Clock // default clock.Real{}
	Logger *slog.Logger
	// NeedBody is asked after the header fetch; true fetches BODY.PEEK[]
	// (capped at MaxBodyFetch) and re-parses the record with message.Parse.
	NeedBody func(*message.Record) bool
	// Shallow, when set, is asked of every fetched record that could be
	// read shallow (message.ParseShallow: it has a Message-ID), once its
	// location is set: true hands it to the Sink shallow, to be stored as
	// it is (the daemon: history, see its horizon), false parses it in full
	// first. Nil: every record is parsed in full. NeedBody is never asked
	// of a shallow record.
	Shallow func(*message.Record) bool
	// Light, when set, lets a long backlog (lightFrom UIDs or more: a
	// first sync) be fetched light: only historyFields, no BODYSTRUCTURE.
	// It is asked once per fetched batch of the shallow records so
	// fetched and answers, for each, whether the Sink will store it as it
	// is, without looking at it (the daemon: history that cites nothing
	// tracked); those reach the Sink marked message.Record.Partial, the
	// rest are fetched again in full. An error fetches the batch in full.
	Light       func([]*message.Record) ([]bool, error)
	BatchSize   int           // UIDs per FETCH during sync
	IdleRestart time.Duration // re-issue IDLE after this long
	// MinBackoff and MaxBackoff bound the reconnect delay, which doubles
	// per failed attempt, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// Since is when the daemon's lookback starts. imapwatch still records
	// every message of a folder's first sync (the daemon applies lookback);
	// Since only appears in the first-sync log line.
	Since       time.Time
	DebugWriter io.Writer // IMAP trace (without LOGIN), only when set
	// DialTimeout bounds connect + TLS + login; default DefaultDialTimeout.
	DialTimeout time.Duration
	// DialLimiter, when set, is shared with every other connection of the
	// process: at most its Cap connections dial and log in at once
	// (reconnects included), so a daemon of many accounts does not
	// overrun the server's login processes at start.
	DialLimiter *DialLimiter
}

// FolderStatus is a snapshot of one watched folder, for `followupd status`.
type FolderStatus struct {
	Mailbox    string // the folder's name once known, else its role
	Role       message.Role
	Connected  bool
	LastSync   time.Time // last completed resync or fetch of new mail
	Reconnects int
	LastError  string
}

// Watcher watches one account's folders. Create it with New and call Run
// once.
type Watcher struct {
	acct     *config.Account
	name     string // account name used in logs and for the Sink
	password string
	sink     Sink
	opt      Options
	log      *slog.Logger

	noIdle bool // tests: poll with NOOP as for a server without IDLE

	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex // guards folders' status
	folders []*folder
}

// folder is one watched mailbox. Fields other than status are owned by the
// folder's goroutine.
type folder struct {
	role     message.Role
	name     string // configured name; "" for Sent means "discover"
	firstDue bool   // Ready still waits for this folder's first sync

	// flagCache remembers the flags last reported per UID (of uidValidity),
	// so a reconnect without CONDSTORE reports only what changed.
	flagCache   map[uint32]string
	cacheValidT uint32

	status FolderStatus // guarded by Watcher.mu
}

// New returns a Watcher for acct. password is used for LOGIN only and is
// never logged.
func New(acct *config.Account, password string, sink Sink, opt Options) *Watcher {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = DefaultBatchSize
	}
	if opt.IdleRestart <= 0 {
		opt.IdleRestart = DefaultIdleRestart
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = DefaultMinBackoff
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = DefaultMaxBackoff
	}
	if opt.MaxBackoff < opt.MinBackoff {
		opt.MaxBackoff = opt.MinBackoff
	}
	name := ""
	if acct != nil {
		name = acct.Name
		if name == "" {
			name = acct.Address
		}
	}
	w := &Watcher{
		acct:     acct,
		name:     name,
		password: password,
		sink:     sink,
		opt:      opt,
		log:      opt.Logger.With("pkg", "imapwatch", "account", name),
		ready:    make(chan struct{}),
	}
	if acct != nil {
		inbox := acct.Folders.Inbox
		if inbox == "" {
			inbox = "INBOX"
		}
		w.folders = append(w.folders,
			&folder{role: message.RoleInbox, name: inbox},
			&folder{role: message.RoleSent, name: acct.Folders.Sent})
		if acct.Folders.Stop != "" {
			w.folders = append(w.folders, &folder{role: message.RoleStop, name: acct.Folders.Stop})
		}
	}
	for _, f := range w.folders {
		f.firstDue = true
		f.status = FolderStatus{Mailbox: f.name, Role: f.role}
		if f.status.Mailbox == "" {
			f.status.Mailbox = f.role.String()
		}
	}
	return w
}

// Run watches every folder (INBOX, Sent, and the Stop folder when set), one
// goroutine and connection each, reconnecting with backoff after any
// failure, until ctx ends. It returns nil then.
func (w *Watcher) Run(ctx context.Context) error {
	if w.acct == nil || w.sink == nil {
		return errors.New("imapwatch: watcher without account or sink")
	}
	var wg sync.WaitGroup
	for _, f := range w.folders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.runFolder(ctx, f)
		}()
	}
	wg.Wait()
	return nil
}

// Ready is closed once every folder finished its first sync after start.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Status returns a snapshot of every watched folder.
func (w *Watcher) Status() []FolderStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]FolderStatus, len(w.folders))
	for i, f := range w.folders {
		out[i] = f.status
	}
	return out
}

func (w *Watcher) updateStatus(f *folder, fn func(*FolderStatus)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn(&f.status)
}

// synced records a completed sync and closes Ready after every folder's
// first one.
func (w *Watcher) synced(f *folder) {
	now := w.opt.Clock.Now()
	w.mu.Lock()
	f.status.LastSync = now
	f.firstDue = false
	all := true
	for _, o := range w.folders {
		all = all && !o.firstDue
	}
	w.mu.Unlock()
	if all {
		w.readyOnce.Do(func() { close(w.ready) })
	}
}

// runFolder is the folder goroutine: sessions separated by backoff.
func (w *Watcher) runFolder(ctx context.Context, f *folder) {
	attempt := 0
	for {
		s := &session{w: w, f: f, mailbox: f.name}
		err := s.run(ctx)
		w.updateStatus(f, func(st *FolderStatus) { st.Connected = false })
		if ctx.Err() != nil {
			w.log.Debug("folder watch stopped", "mailbox", s.mailboxOrRole(), "err", err)
			return
		}
		if s.synced {
			attempt = 0 // the connection worked; start the backoff over
		}
		attempt++
		wait := w.backoff(attempt)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		w.updateStatus(f, func(st *FolderStatus) {
			st.Reconnects++
			st.LastError = msg
		})
		w.log.Warn("imap session ended, reconnecting", "mailbox", s.mailboxOrRole(), "err", err, "attempt", attempt, "wait", wait)
		t := w.opt.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// backoff is MinBackoff·2^(attempt-1), capped at MaxBackoff, with the upper
// half jittered so that many connections dropped together don't return in
// step.
func (w *Watcher) backoff(attempt int) time.Duration {
	d := w.opt.MinBackoff
	for i := 1; i < attempt && d < w.opt.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.opt.MaxBackoff)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}
