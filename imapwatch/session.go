package imapwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/message"
)

// Errors a session ends with; the folder goroutine retries after backoff.
var (
	ErrNoSentFolder = errors.New("imapwatch: no Sent folder found (no \\Sent attribute, no known name): set folders.sent")
	ErrNoFolder     = errors.New("imapwatch: folder does not exist")
)

// session is one connection of one folder, from dial to error. It is owned
// by the folder goroutine; only the fields under mu are touched by the
// client's unilateral-data handler.
type session struct {
	w       *Watcher
	f       *folder
	mailbox string
	log     *slog.Logger

	c          *imapclient.Client
	condstore  bool
	searchOpts *imap.SearchOptions // RETURN (ALL) with ESEARCH: UIDs come as ranges
	st         State
	synced     bool // the first resync of this session completed

	// Kicked (never blocking) by the unilateral-data handler.
	exists    chan struct{} // EXISTS: new mail may be there
	flagsKick chan struct{} // FETCH FLAGS: see pending

	mu      sync.Mutex
	pending []flagUpdate // unilateral FETCH FLAGS not yet reported
}

type flagUpdate struct {
	seq   uint32
	uid   imap.UID // 0 when the server did not send it
	flags []imap.Flag
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func drain(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (s *session) mailboxOrRole() string {
	if s.mailbox != "" {
		return s.mailbox
	}
	return s.f.role.String()
}

// tracksFlags says whether flag changes in this folder are reported.
func (s *session) tracksFlags() bool {
	return s.f.role == message.RoleSent || s.f.role == message.RoleStop
}

// onMailbox runs on the client's reader goroutine: only kick.
func (s *session) onMailbox(d *imapclient.UnilateralDataMailbox) {
	if d.NumMessages != nil {
		kick(s.exists)
	}
}

// onFetch runs on a goroutine imapclient starts per unilateral FETCH; it
// must consume the data (the reader waits for it) and then only records and
// kicks.
func (s *session) onFetch(msg *imapclient.FetchMessageData) {
	up := flagUpdate{seq: msg.SeqNum}
	hasFlags := false
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch item := item.(type) {
		case imapclient.FetchItemDataUID:
			up.uid = item.UID
		case imapclient.FetchItemDataFlags:
			up.flags = item.Flags
			hasFlags = true
		}
	}
	if !hasFlags || !s.tracksFlags() {
		return
	}
	s.mu.Lock()
	s.pending = append(s.pending, up)
	s.mu.Unlock()
	kick(s.flagsKick)
}

// run connects, resyncs and idles until an error or ctx ends.
func (s *session) run(ctx context.Context) error {
	w := s.w
	s.log = w.log.With("mailbox", s.mailboxOrRole())
	s.exists = make(chan struct{}, 1)
	s.flagsKick = make(chan struct{}, 1)
	handler := &imapclient.UnilateralDataHandler{Mailbox: s.onMailbox, Fetch: s.onFetch}
	c, err := Dial(ctx, w.acct, w.password, DialOptions{DebugWriter: w.opt.DebugWriter, Timeout: w.opt.DialTimeout, Limiter: w.opt.DialLimiter, handler: handler})
	if err != nil {
		return err
	}
	s.c = c
	stop := closeOnDone(ctx, c)
	defer stop()
	defer c.Close()

	if s.mailbox == "" {
		fs, err := Discover(ctx, c, w.acct)
		if err != nil {
			return err
		}
		if fs.Sent == "" {
			s.w.synced(s.f) // nothing to sync; don't hold Ready back
			return ErrNoSentFolder
		}
		s.mailbox = fs.Sent
		s.log = w.log.With("mailbox", s.mailbox)
	}
	w.updateStatus(s.f, func(st *FolderStatus) {
		st.Mailbox = s.mailbox
		st.Connected = true
	})

	caps := c.Caps()
	if caps.Has(imap.CapESearch) {
		s.searchOpts = &imap.SearchOptions{ReturnAll: true}
	}
	s.condstore = s.tracksFlags() && caps.Has(imap.CapCondStore)
	sel, err := c.Select(s.mailbox, &imap.SelectOptions{CondStore: s.condstore}).Wait()
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			s.w.synced(s.f) // nothing to sync; don't hold Ready back
			return ctxErr(ctx, fmt.Errorf("%w: select %q: %w", ErrNoFolder, s.mailbox, err))
		}
		return ctxErr(ctx, fmt.Errorf("select %q: %w", s.mailbox, err))
	}
	if sel.HighestModSeq == 0 {
		s.condstore = false // NOMODSEQ: this mailbox has no mod-sequences
	}
	if err := s.resync(ctx, sel); err != nil {
		return err
	}
	s.synced = true
	w.synced(s.f)
	s.log.Info("folder in sync, watching", "uidvalidity", s.st.UIDValidity, "last_uid", s.st.LastUID)
	if caps.Has(imap.CapIdle) && !w.noIdle {
		return s.idle(ctx)
	}
	s.log.Info("server has no IDLE, polling", "every", PollInterval)
	return s.poll(ctx)
}

// resync brings the Sink up to date after SELECT: flag changes of known
// messages (Sent/Stop), then every message above LastUID (all of them when
// UIDVALIDITY changed or on the folder's first sync).
func (s *session) resync(ctx context.Context, sel *imap.SelectData) error {
	w := s.w
	st, err := w.sink.LoadState(w.name, s.mailbox)
	if err != nil {
		return fmt.Errorf("sink: load state of %q: %w", s.mailbox, err)
	}
	fresh := st.UIDValidity != sel.UIDValidity
	switch {
	case st.UIDValidity == 0:
		s.log.Info("first sync of folder, fetching all messages", "messages", sel.NumMessages, "since", w.opt.Since)
	case fresh:
		s.log.Warn("uidvalidity changed, fetching all messages again", "old", st.UIDValidity, "new", sel.UIDValidity, "messages", sel.NumMessages)
	}
	if fresh {
		st = State{UIDValidity: sel.UIDValidity}
	}
	s.st = st
	if s.f.cacheValidT != st.UIDValidity {
		s.f.flagCache, s.f.cacheValidT = nil, st.UIDValidity
	}

	if !fresh && s.tracksFlags() {
		if err := s.resyncFlags(ctx, sel); err != nil {
			return err
		}
	}
	if fresh || sel.UIDNext == 0 || uint32(sel.UIDNext) > s.st.LastUID+1 {
		if err := s.fetchNew(ctx); err != nil {
			return err
		}
	}
	if s.condstore {
		s.st.HighestModSeq = sel.HighestModSeq
	}
	if fresh || s.st != st {
		if err := w.sink.SaveState(w.name, s.mailbox, s.st); err != nil {
			return fmt.Errorf("sink: save state of %q: %w", s.mailbox, err)
		}
	}
	return nil
}

// resyncFlags reports flags that changed while we were away: CHANGEDSINCE
// with CONDSTORE, else (Sent only) the flags of every known message, of
// which only those that differ from what this Watcher last reported are
// passed on.
func (s *session) resyncFlags(ctx context.Context, sel *imap.SelectData) error {
	if s.st.LastUID == 0 {
		return nil
	}
	opts := &imap.FetchOptions{UID: true, Flags: true}
	switch {
	case s.condstore && s.st.HighestModSeq != 0:
		if sel.HighestModSeq == s.st.HighestModSeq {
			return nil // nothing changed (RFC 7162 §3.1.2.1)
		}
		opts.ChangedSince = s.st.HighestModSeq
	case s.f.role != message.RoleSent:
		return nil
	}
	var set imap.UIDSet
	set.AddRange(1, imap.UID(s.st.LastUID))
	type uf struct {
		uid   imap.UID
		flags []imap.Flag
	}
	var got []uf
	cmd := s.c.Fetch(set, opts)
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		var x uf
		hasFlags := false
		for item := m.Next(); item != nil; item = m.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				x.uid = item.UID
			case imapclient.FetchItemDataFlags:
				x.flags = item.Flags
				hasFlags = true
			}
		}
		if hasFlags && x.uid != 0 {
			got = append(got, x)
		}
	}
	if err := cmd.Close(); err != nil {
		return ctxErr(ctx, fmt.Errorf("fetch flags of uid 1:%d in %q: %w", s.st.LastUID, s.mailbox, err))
	}
	full := opts.ChangedSince == 0
	for _, x := range got {
		if _, known := s.f.flagCache[uint32(x.uid)]; full && !known && !notable(x.flags) {
			// First look at this message since start: flags that carry no
			// news (\Seen, \Recent) are remembered but not reported, so a
			// restart does not call HandleFlags for every sent message.
			s.remember(x.uid, flagStrings(x.flags))
			continue
		}
		if err := s.reportFlags(ctx, x.uid, x.flags); err != nil {
			return err
		}
	}
	return nil
}

// notable reports whether flags hold more than \Seen and \Recent.
func notable(flags []imap.Flag) bool {
	for _, f := range flags {
		if !strings.EqualFold(string(f), string(imap.FlagSeen)) && !strings.EqualFold(string(f), `\Recent`) {
			return true
		}
	}
	return false
}

func (s *session) remember(uid imap.UID, fs []string) {
	if s.f.flagCache == nil {
		s.f.flagCache = make(map[uint32]string)
	}
	s.f.flagCache[uint32(uid)] = flagKey(fs)
}

// reportFlags passes a flag change of a known message to the Sink, unless
// it is what was last reported for that UID.
func (s *session) reportFlags(ctx context.Context, uid imap.UID, flags []imap.Flag) error {
	if uid == 0 || uint32(uid) > s.st.LastUID {
		return nil // not delivered yet; HandleMessages will carry its flags
	}
	fs := flagStrings(flags)
	key := flagKey(fs)
	if prev, ok := s.f.flagCache[uint32(uid)]; ok && prev == key {
		return nil
	}
	if err := s.w.sink.HandleFlags(ctx, s.w.name, s.mailbox, s.f.role, s.st.UIDValidity, uint32(uid), fs); err != nil {
		return fmt.Errorf("sink: handle flags of uid %d in %q: %w", uid, s.mailbox, err)
	}
	s.remember(uid, fs)
	s.log.Debug("flags changed", "uid", uint32(uid), "flags", fs)
	return nil
}

func flagKey(fs []string) string {
	c := make([]string, len(fs))
	for i, f := range fs {
		c[i] = strings.ToLower(f)
	}
	slices.Sort(c)
	return strings.Join(c, " ")
}

// reportPending handles the unilateral FETCH FLAGS gathered by onFetch.
// Updates without a UID are resolved with FETCH seq (UID FLAGS).
func (s *session) reportPending(ctx context.Context) error {
	s.mu.Lock()
	ups := s.pending
	s.pending = nil
	s.mu.Unlock()
	var seqs imap.SeqSet
	for _, u := range ups {
		if u.uid == 0 {
			seqs.AddNum(u.seq)
			continue
		}
		if err := s.reportFlags(ctx, u.uid, u.flags); err != nil {
			return err
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	msgs, err := s.c.Fetch(seqs, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("fetch flags of %v in %q: %w", seqs, s.mailbox, err))
	}
	for _, m := range msgs {
		if err := s.reportFlags(ctx, m.UID, m.Flags); err != nil {
			return err
		}
	}
	return nil
}

// pipelineDepth is how many fetched batches may wait for the Sink while
// the next one is fetched (see fetchNew).
const pipelineDepth = 8

// maxMerge is how many records deliver hands the Sink at once at most when
// fetched batches are waiting: a Sink slower than the fetch (a first sync,
// whose store writes cost per commit about as much as per record: random
// Message-IDs touch a page each) gets fewer, bigger batches, up to this.
const maxMerge = 10000

// bulkFrom is the backlog (in UIDs) from which a sync is a bulk one: deliver
// then waits until it has maxMerge records (or the fetch ended) before it
// calls the Sink, so a first sync of a big folder commits every 10,000
// messages, not every fetched batch. Each commit costs about a page write
// per record it adds at random (Message-IDs are random): 3,000 records a
// commit cost a first sync of 100,000 messages twice the store time of
// 10,000 (bench/NOTES.md).
const bulkFrom = 4 * maxMerge

// bulkBatch is the FETCH size of a bulk sync (at least; Options.BatchSize
// when larger): each FETCH costs a round trip and the server's start of a
// command, a first sync of 100,000 messages in chunks of 1,000 spent a
// fifth of its time more than in chunks of 2,500 (bench/NOTES.md).
const bulkBatch = 2500

// lightFrom is the backlog (in UIDs) from which a sync may fetch light
// (fetchBatch): a first start or a long outage, where history is likely;
// new mail as it arrives is fetched in full at once.
const lightFrom = 1000

// batch is one fetched chunk on its way to the Sink.
type batch struct {
	recs []*message.Record // may be empty: the chunk's UIDs were expunged
	last uint32            // the chunk's highest UID: LastUID once accepted
	left int               // UIDs still to fetch after this chunk
}

// delivered is what the Sink goroutine of fetchNew ends with: the state it
// saved last and the error that stopped it.
type delivered struct {
	st  State
	err error
}

// fetchNew delivers every message above LastUID, BatchSize UIDs per FETCH,
// saving state after each batch the Sink accepted.
//
// It is a two-stage pipeline, so that the next batch's FETCH streams while
// the Sink stores the previous one (a first sync costs max(fetch, handle)
// per batch instead of their sum; bench/NOTES.md). This goroutine keeps the
// connection and fetches; one goroutine per call (deliver) takes batches
// from a channel of pipelineDepth, calls HandleMessages and then SaveState
// with LastUID at the batch's end, in UID order. So LastUID is saved only
// for what the Sink accepted, and the Sink's calls for one folder never
// overlap. A Sink error stops the goroutine; the fetcher sees it before
// its next send and returns it, and the batches fetched meanwhile are
// dropped, to be fetched again after the reconnect (from the saved
// LastUID). A fetch error lets the Sink finish the batches already fetched
// before it is returned. s.st is written back only when both have stopped.
func (s *session) fetchNew(ctx context.Context) error {
	var set imap.UIDSet
	set.AddRange(imap.UID(s.st.LastUID+1), 0) // LastUID+1:*
	uids, err := uidSearch(s.c, &imap.SearchCriteria{UID: []imap.UIDSet{set}}, s.searchOpts)
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("search new uids above %d in %q: %w", s.st.LastUID, s.mailbox, err))
	}
	// "n:*" includes the highest UID even when it is below n (RFC 9051
	// §6.4.8), so filter.
	uids = slices.DeleteFunc(uids, func(u uint32) bool { return u <= s.st.LastUID })
	if len(uids) == 0 {
		return nil
	}
	batches := make(chan batch, pipelineDepth)
	done := make(chan delivered, 1)
	bulk := len(uids) >= bulkFrom
	least := 0
	if bulk {
		least = maxMerge
	}
	go func() {
		st, err := s.deliver(ctx, batches, s.st, least)
		done <- delivered{st, err}
	}()
	var ferr error
	// A long backlog (a first sync) where there can be history starts
	// light (fetchBatch), and stays light while at least half of a batch
	// was history.
	adaptive := len(uids) >= lightFrom && s.w.opt.Light != nil
	light := adaptive
	for len(uids) > 0 {
		size := s.w.opt.BatchSize
		if bulk {
			size = max(size, bulkBatch)
		}
		n := min(len(uids), size)
		chunk := uids[:n]
		uids = uids[n:]
		recs, err := s.fetchBatch(ctx, chunk, light)
		if err != nil {
			ferr = err
			break
		}
		if adaptive {
			light = 2*s.lightKept(recs, light) >= len(recs)
		}
		// Advance past the whole chunk: a UID that is gone was expunged.
		b := batch{recs: recs, last: chunk[len(chunk)-1], left: len(uids)}
		select {
		case batches <- b:
			continue
		case r := <-done: // the Sink stopped (an error): fetch no more
			s.st = r.st
			return r.err
		}
	}
	close(batches)
	r := <-done
	s.st = r.st
	if r.err != nil {
		return r.err
	}
	return ferr
}

// deliver is fetchNew's Sink stage: every batch from in to HandleMessages,
// then LastUID to SaveState (or both to a StateSink's HandleBatch), until
// in is closed, an error, or ctx ends, merging waiting batches (at least
// least records in a bulk sync; mergeWaiting). It returns the state last
// saved (st when none was).
func (s *session) deliver(ctx context.Context, in <-chan batch, st State, least int) (State, error) {
	ss, oneCommit := s.w.sink.(StateSink)
	for b := range in {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var err error
		if b, err = mergeWaiting(ctx, b, in, least); err != nil {
			return st, err
		}
		if oneCommit {
			next := st
			next.LastUID = b.last
			if err := ss.HandleBatch(ctx, s.w.name, s.mailbox, b.recs, next); err != nil {
				if len(b.recs) == 0 {
					return st, fmt.Errorf("sink: save state of %q: %w", s.mailbox, err)
				}
				return st, fmt.Errorf("sink: handle %d messages (uid %d-%d) of %q: %w",
					len(b.recs), b.recs[0].UID, b.recs[len(b.recs)-1].UID, s.mailbox, err)
			}
			st = next
			s.log.Debug("fetched batch", "messages", len(b.recs), "uid", st.LastUID)
			continue
		}
		if len(b.recs) > 0 {
			if err := s.w.sink.HandleMessages(ctx, b.recs); err != nil {
				return st, fmt.Errorf("sink: handle %d messages (uid %d-%d) of %q: %w",
					len(b.recs), b.recs[0].UID, b.recs[len(b.recs)-1].UID, s.mailbox, err)
			}
		}
		next := st
		next.LastUID = b.last
		if err := s.w.sink.SaveState(s.w.name, s.mailbox, next); err != nil {
			return st, fmt.Errorf("sink: save state of %q: %w", s.mailbox, err)
		}
		st = next
		s.log.Debug("fetched batch", "messages", len(b.recs), "uid", st.LastUID)
	}
	return st, nil
}

// mergeWaiting appends to b the batches waiting in in, up to maxMerge
// records: one Sink call and one commit for all of them. It waits for more
// while b holds fewer than least records, in is open and maxMerge or more
// UIDs are still to be fetched (a bulk sync), else takes only what is
// there. The result covers up to the last merged
// batch's UID.
func mergeWaiting(ctx context.Context, b batch, in <-chan batch, least int) (batch, error) {
	for len(b.recs) < maxMerge {
		var nb batch
		ok := true
		// Near the end of the fetch, take what is there: the last commit
		// is the sync's tail, every record in it waits for it.
		if len(b.recs) < least && b.left >= maxMerge {
			select {
			case nb, ok = <-in:
			case <-ctx.Done():
				return b, ctx.Err()
			}
		} else {
			select {
			case nb, ok = <-in:
			default:
				return b, nil
			}
		}
		if !ok {
			return b, nil
		}
		b.recs = append(b.recs, nb.recs...)
		b.last, b.left = nb.last, nb.left
	}
	return b, nil
}

// lightKept counts the records of a fetched batch that a light fetch
// keeps (or would have kept, asking Options.Light of the shallow ones when
// the batch was fetched in full): the next batch goes light when that is
// at least half of it. Counting history by date alone would keep a
// backlog of known mail (a UIDVALIDITY change) fetching every batch twice.
func (s *session) lightKept(recs []*message.Record, light bool) int {
	n := 0
	if light {
		for _, r := range recs {
			if r.Partial {
				n++
			}
		}
		return n
	}
	var asked []*message.Record
	for _, r := range recs {
		if r.IsShallow() {
			asked = append(asked, r)
		}
	}
	if len(asked) == 0 {
		return 0
	}
	ok, err := s.w.opt.Light(asked)
	if err != nil {
		return 0
	}
	for _, k := range ok {
		if k {
			n++
		}
	}
	return n
}

// fetchBatch fetches header fields, flags, dates and structure of uids
// (ascending) and returns their records in UID order.
//
// Light (with Options.Light) fetches only historyFields, without
// BODYSTRUCTURE, and then in full what Options.Light does not keep (or
// what has no Message-ID: its synthetic id needs every field): most of a
// first sync of a big mailbox is history, which needs nothing more, and
// BODYSTRUCTURE and the long field list are most of what a header fetch
// costs to decode on both ends (bench/NOTES.md). A record so kept is
// Partial: those fields and no attachment list.
func (s *session) fetchBatch(ctx context.Context, uids []uint32, light bool) ([]*message.Record, error) {
	var kept []*message.Record
	if keep := s.w.opt.Light; light && keep != nil {
		recs, missing, err := fetchHeaders(ctx, s.c, s.mailbox, uids, fetchLight, s.log)
		if err != nil {
			return nil, err
		}
		full := missing
		var asked []*message.Record
		for _, rec := range recs {
			s.locate(rec)
			if rec.IsShallow() {
				asked = append(asked, rec)
			} else {
				full = append(full, rec.UID)
			}
		}
		ok, err := keep(asked)
		if err != nil || len(ok) != len(asked) {
			s.log.Warn("cannot tell history apart; fetching the batch in full", "err", err)
			ok = nil
		}
		for i, rec := range asked {
			if ok != nil && ok[i] {
				rec.Partial = true
				kept = append(kept, rec)
			} else {
				full = append(full, rec.UID)
			}
		}
		if len(full) == 0 {
			return kept, nil // no body wanted: history is never read further
		}
		slices.Sort(full)
		uids = full
	}
	recs, missing, err := s.fetchRecords(ctx, uids)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		// A unilateral FETCH FLAGS for a UID of the batch can be taken by
		// imapclient for the batch's answer, which then arrives as
		// unilateral data. Ask again for those; what is still missing was
		// expunged.
		more, _, err := s.fetchRecords(ctx, missing)
		if err != nil {
			return nil, err
		}
		recs = append(recs, more...)
		slices.SortFunc(recs, func(a, b *message.Record) int { return cmpUID(a.UID, b.UID) })
	}
	if s.w.opt.NeedBody != nil {
		if err := s.fetchBodies(ctx, recs); err != nil {
			return nil, err
		}
	}
	if len(kept) > 0 {
		recs = append(recs, kept...)
		slices.SortFunc(recs, func(a, b *message.Record) int { return cmpUID(a.UID, b.UID) })
	}
	return recs, nil
}

func cmpUID(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *session) fetchRecords(ctx context.Context, uids []uint32) (recs []*message.Record, missing []uint32, err error) {
	shallow := s.w.opt.Shallow
	mode := fetchFull
	if shallow != nil {
		mode = fetchShallow
	}
	recs, missing, err = fetchHeaders(ctx, s.c, s.mailbox, uids, mode, s.log)
	for _, rec := range recs {
		s.locate(rec)
		if rec.IsShallow() && !shallow(rec) {
			deepen(rec, s.log)
		}
	}
	return recs, missing, err
}

// deepen parses a shallow record in full (message.Record.Deepen).
func deepen(rec *message.Record, log *slog.Logger) {
	if err := rec.Deepen(); err != nil {
		log.Debug("header partly unreadable", "uid", rec.UID, "msgid", rec.MessageID, "err", err)
	}
}

// fetchMode is what fetchHeaders asks for and how it reads it.
type fetchMode int

const (
	fetchFull    fetchMode = iota // every header field, BODYSTRUCTURE; records parsed in full
	fetchShallow                  // the same; records shallow where they can be (toRecord)
	fetchLight                    // historyFields only, no BODYSTRUCTURE; records shallow where they can be
)

// historyFields are the header fields a light fetch asks for: what tells
// history apart (Message-ID, Date, what it cites) and what a person
// reading a stored history record (explain) wants to see.
var historyFields = []string{"Message-ID", "In-Reply-To", "References", "Date", "From", "To", "Cc", "Subject"}

// fetchHeaders fetches header fields (BODY.PEEK), flags, INTERNALDATE, size
// and (but for fetchLight) BODYSTRUCTURE of uids and converts each with
// toRecord; it returns the records in UID order and the UIDs without an
// answer. It is shared by the watcher and FetchSince.
func fetchHeaders(ctx context.Context, c *imapclient.Client, mailbox string, uids []uint32, mode fetchMode, log *slog.Logger) (recs []*message.Record, missing []uint32, err error) {
	set := uidSet(uids)
	sec := headerSection()
	opts := &imap.FetchOptions{
		UID:           true,
		Flags:         true,
		InternalDate:  true,
		RFC822Size:    true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{sec},
	}
	if mode == fetchLight {
		sec.HeaderFields = historyFields
		opts.BodyStructure = nil
	}
	shallow := mode != fetchFull
	got := make(map[uint32]bool, len(uids))
	cmd := c.Fetch(set, opts)
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		buf, err := m.Collect()
		if err != nil {
			cmd.Close()
			return nil, nil, ctxErr(ctx, fmt.Errorf("fetch uid %d in %q: %w", buf.UID, mailbox, err))
		}
		uid := uint32(buf.UID)
		if uid == 0 || got[uid] || !set.Contains(buf.UID) {
			continue
		}
		hdr, ok := findSection(buf, sec)
		if !ok {
			continue // see fetchBatch
		}
		got[uid] = true
		rec, perr := toRecord(buf, hdr, shallow)
		if perr != nil {
			log.Debug("header partly unreadable", "uid", uid, "msgid", rec.MessageID, "err", perr)
		}
		recs = append(recs, rec)
	}
	if err := cmd.Close(); err != nil {
		return nil, nil, ctxErr(ctx, fmt.Errorf("fetch uid %v in %q: %w", set, mailbox, err))
	}
	for _, u := range uids {
		if !got[u] {
			missing = append(missing, u)
		}
	}
	slices.SortFunc(recs, func(a, b *message.Record) int { return cmpUID(a.UID, b.UID) })
	return recs, missing, nil
}

// locate fills in where the record was seen.
func (s *session) locate(rec *message.Record) {
	rec.Account = s.w.name
	rec.Mailbox = s.mailbox
	rec.Role = s.f.role
	rec.UIDValidity = s.st.UIDValidity
}

// fetchBodies replaces the records NeedBody asks for by a full parse of
// their first MaxBodyFetch bytes. Identity (Message-ID, synthetic or not),
// location, flags, dates and the BODYSTRUCTURE attachment list (complete
// even when the body is cut) are kept from the header record.
func (s *session) fetchBodies(ctx context.Context, recs []*message.Record) error {
	return fetchBodies(ctx, s.c, s.mailbox, recs, s.w.opt.NeedBody, s.log)
}

// fetchBodies replaces the records needBody asks for (in place) by
// withBody's parse of their BODY.PEEK[]; shared by the watcher and FetchSince.
func fetchBodies(ctx context.Context, c *imapclient.Client, mailbox string, recs []*message.Record, needBody func(*message.Record) bool, log *slog.Logger) error {
	idx := make(map[uint32]int)
	var want []uint32
	for i, r := range recs {
		if !r.IsShallow() && needBody(r) {
			idx[r.UID] = i
			want = append(want, r.UID)
		}
	}
	if len(want) == 0 {
		return nil
	}
	sec := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: MaxBodyFetch}}
	set := uidSet(want)
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}})
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		buf, err := m.Collect()
		if err != nil {
			cmd.Close()
			return ctxErr(ctx, fmt.Errorf("fetch body of uid %d in %q: %w", buf.UID, mailbox, err))
		}
		i, ok := idx[uint32(buf.UID)]
		if !ok {
			continue
		}
		raw, ok := findSection(buf, sec)
		if !ok {
			continue
		}
		old := recs[i]
		p, perr := withBody(old, raw)
		if p == nil {
			log.Debug("body unreadable", "uid", old.UID, "msgid", old.MessageID, "err", perr)
			continue
		}
		if perr != nil {
			log.Debug("body partly unreadable", "uid", old.UID, "msgid", old.MessageID, "err", perr)
		}
		recs[i] = p
		delete(idx, old.UID)
	}
	if err := cmd.Close(); err != nil {
		return ctxErr(ctx, fmt.Errorf("fetch bodies of uid %v in %q: %w", set, mailbox, err))
	}
	return nil
}

// withBody parses raw (a BODY.PEEK[] of at most MaxBodyFetch bytes) and
// keeps old's identity (Message-ID, synthetic or not), location, flags,
// dates and BODYSTRUCTURE attachment list (complete even when the body is
// cut). It returns nil when raw is unreadable, and the parse error with a
// partly readable record.
func withBody(old *message.Record, raw []byte) (*message.Record, error) {
	p, perr := message.Parse(bytes.NewReader(raw), MaxBodyText)
	if p == nil {
		return nil, perr
	}
	p.Account, p.Mailbox, p.Role, p.UIDValidity, p.UID = old.Account, old.Mailbox, old.Role, old.UIDValidity, old.UID
	p.MessageID, p.SyntheticID = old.MessageID, old.SyntheticID
	p.Flags, p.Internal = old.Flags, old.Internal
	if p.Date.IsZero() {
		p.Date = old.Date
	}
	if len(old.Attachments) > 0 {
		p.Attachments = old.Attachments
	}
	if p.ContentType == "" {
		p.ContentType = old.ContentType
	}
	return p, perr
}

func uidSet(uids []uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set
}

// catchUp handles whatever the handler reported while a command ran.
func (s *session) catchUp(ctx context.Context, newMail, flags bool) error {
	if drain(s.flagsKick) || flags {
		if err := s.reportPending(ctx); err != nil {
			return err
		}
	}
	if drain(s.exists) || newMail {
		if err := s.fetchNew(ctx); err != nil {
			return err
		}
		s.w.synced(s.f)
	}
	return nil
}

// idle waits in IDLE, leaving it to fetch new mail or report flags, and
// re-issuing it every IdleRestart.
func (s *session) idle(ctx context.Context) error {
	newMail, flags := false, false
	for {
		if err := s.catchUp(ctx, newMail, flags); err != nil {
			return err
		}
		newMail, flags = false, false
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cmd, err := s.c.Idle()
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("idle in %q: %w", s.mailbox, err))
		}
		t := s.w.opt.Clock.NewTimer(s.w.opt.IdleRestart)
		select {
		case <-ctx.Done():
		case <-s.exists:
			newMail = true
		case <-s.flagsKick:
			flags = true
		case <-t.C():
			// Also a safety net: look for new mail even if no EXISTS came.
			newMail = true
		case <-s.c.Closed():
		}
		t.Stop()
		cerr := cmd.Close()
		werr := cmd.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := errors.Join(cerr, werr); err != nil {
			return fmt.Errorf("idle in %q: %w", s.mailbox, err)
		}
	}
}

// poll is idle for servers without IDLE: NOOP every PollInterval, which
// makes the server send EXISTS and FETCH FLAGS.
func (s *session) poll(ctx context.Context) error {
	newMail, flags := false, false
	for {
		if err := s.catchUp(ctx, newMail, flags); err != nil {
			return err
		}
		newMail, flags = false, false
		t := s.w.opt.Clock.NewTimer(PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.exists:
			newMail = true
		case <-s.flagsKick:
			flags = true
		case <-s.c.Closed():
			t.Stop()
			return fmt.Errorf("poll %q: connection closed", s.mailbox)
		case <-t.C():
			if err := s.c.Noop().Wait(); err != nil {
				return ctxErr(ctx, fmt.Errorf("noop in %q: %w", s.mailbox, err))
			}
		}
		t.Stop()
	}
}
