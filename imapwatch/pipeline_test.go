package imapwatch

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"followupd/clock"
	"followupd/message"
)

// fetchCmd is a UID FETCH command in a trace (not the server's "T1 OK UID
// FETCH completed").
var fetchCmd = regexp.MustCompile(`T[0-9]+ UID FETCH `)

// fetchCounter counts the UID FETCH commands in an IMAP trace.
type fetchCounter struct {
	mu sync.Mutex
	n  int
}

func (f *fetchCounter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n += len(fetchCmd.FindAllIndex(p, -1))
	return len(p), nil
}

func (f *fetchCounter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// gateSink holds HandleMessages of the Sent folder until release is
// closed, and checks the pipeline's invariants on every call:
// HandleMessages calls of one folder never overlap, batches come in
// ascending UID order without gaps or repeats of accepted UIDs, and
// SaveState's LastUID is exactly the last UID the Sink accepted (the
// tests expunge nothing), never a UID of a batch it refused or has not
// seen.
type gateSink struct {
	*memSink
	t       *testing.T
	release chan struct{}
	fail    map[int]bool // HandleMessages calls (1-based) of Sent that fail

	mu       sync.Mutex
	inFlight bool
	sentCall int
	accepted uint32 // highest Sent UID accepted
	saves    []uint32
}

func newGateSink(t *testing.T) *gateSink {
	return &gateSink{memSink: newSink(), t: t, release: make(chan struct{}), fail: map[int]bool{}}
}

func (g *gateSink) HandleMessages(ctx context.Context, recs []*message.Record) error {
	if len(recs) == 0 || recs[0].Mailbox != "Sent" {
		return g.memSink.HandleMessages(ctx, recs)
	}
	g.mu.Lock()
	if g.inFlight {
		g.t.Errorf("HandleMessages of Sent called while another is running")
	}
	g.inFlight = true
	g.sentCall++
	call := g.sentCall
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight = false
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if recs[0].UID != g.accepted+1 {
		g.t.Errorf("call %d: batch starts at uid %d, want %d (the one after the last accepted)", call, recs[0].UID, g.accepted+1)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].UID != recs[i-1].UID+1 {
			g.t.Errorf("call %d: uids not consecutive: %d after %d", call, recs[i].UID, recs[i-1].UID)
		}
	}
	if g.fail[call] {
		return fmt.Errorf("sink refuses call %d", call)
	}
	g.accepted = recs[len(recs)-1].UID
	return g.memSink.HandleMessages(ctx, recs)
}

func (g *gateSink) SaveState(account, mailbox string, st State) error {
	if mailbox == "Sent" {
		g.mu.Lock()
		if st.LastUID != g.accepted {
			g.t.Errorf("SaveState LastUID %d, but the Sink accepted up to uid %d", st.LastUID, g.accepted)
		}
		g.saves = append(g.saves, st.LastUID)
		g.mu.Unlock()
	}
	return g.memSink.SaveState(account, mailbox, st)
}

func (g *gateSink) savedUIDs() []uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.saves)
}

// While the Sink handles one batch, the next FETCHes are already on the
// wire, no more than pipelineDepth batches wait for the Sink, and what
// waited is handed over merged (fewer, bigger commits for a slow Sink).
func TestSyncFetchesAheadWhileSinkBusy(t *testing.T) {
	srv, acct := setup(t, "Sent")
	appendN(t, srv, "Sent", 1, 150)
	sink := newGateSink(t)
	fc := &fetchCounter{}
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), BatchSize: 10, DebugWriter: fc})
	run(t, w)

	// The Sink holds batch 1: pipelineDepth batches wait in the channel and
	// one more is fetched and waits to be sent.
	want := 2 + pipelineDepth
	waitFor(t, 5*time.Second, "FETCH of the next batches while the Sink holds the first", func() bool {
		return fc.count() >= want
	})
	time.Sleep(50 * time.Millisecond) // a server round trip: room for a wrong extra FETCH
	if got := fc.count(); got != want {
		t.Errorf("%d FETCH commands while the Sink holds batch 1, want %d (bounded look-ahead)", got, want)
	}
	if st := sink.state("Sent"); st.LastUID != 0 {
		t.Errorf("state saved before the Sink accepted anything: %+v", st)
	}
	close(sink.release)
	waitReady(t, w)
	if got, want := sink.uids("Sent"), seq(1, 150); !slices.Equal(got, want) {
		t.Errorf("Sent uids = %v, want %v", got, want)
	}
	sizes := sink.batchSizes("Sent")
	if len(sizes) == 0 || sizes[0] != 10 || slices.Max(sizes) < 20 {
		t.Errorf("batch sizes = %v, want the held batch of 10, then the waiting ones merged", sizes)
	}
	saved := slices.Compact(sink.savedUIDs())
	if len(saved) != len(sizes) || saved[len(saved)-1] != 150 || !slices.IsSorted(saved) {
		t.Errorf("saved LastUIDs = %v for batches %v, want one per batch, rising to 150", saved, sizes)
	}
	for _, u := range saved {
		if u%10 != 0 {
			t.Errorf("saved LastUID %d is not the end of a fetched batch", u)
		}
	}
}

// A Sink error in the middle of a pipelined sync drops the batches fetched
// ahead, stops the folder, and the reconnect redelivers from the last saved
// UID: every UID accepted once, in order, and LastUID never ahead.
func TestSyncSinkErrorMidPipelineRedelivers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fail  []int
		saves []uint32
	}{
		{"second batch", []int{2}, []uint32{10, 20, 30, 40, 50}},
		{"first and fourth", []int{1, 4}, []uint32{10, 20, 30, 40, 50}},
		{"last batch twice", []int{5, 6}, []uint32{10, 20, 30, 40, 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, acct := setup(t, "Sent")
			appendN(t, srv, "Sent", 1, 50)
			sink := newGateSink(t)
			close(sink.release)
			for _, c := range tc.fail {
				sink.fail[c] = true
			}
			fake := clock.NewFake(time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC))
			w := New(acct, testPass, sink, Options{Logger: testLogger(t), Clock: fake, BatchSize: 10})
			run(t, w)
			waitFor(t, 5*time.Second, "redelivery", func() bool {
				fake.Advance(time.Second)
				return sink.state("Sent").LastUID == 50
			})
			waitReady(t, w)
			if got, want := sink.uids("Sent"), seq(1, 50); !slices.Equal(got, want) {
				t.Errorf("accepted uids = %v, want %v (each once, in order)", got, want)
			}
			// resync saves once more at its end (same LastUID); compact.
			if got := slices.Compact(sink.savedUIDs()); !slices.Equal(got, tc.saves) {
				t.Errorf("saved LastUIDs = %v, want %v", got, tc.saves)
			}
			sink.mu.Lock()
			calls := sink.sentCall
			sink.mu.Unlock()
			if want := 5 + len(tc.fail); calls != want {
				t.Errorf("HandleMessages calls = %d, want %d (5 batches + one redelivery per refusal)", calls, want)
			}
			reconnects := 0
			for _, fs := range w.Status() {
				reconnects += fs.Reconnects
			}
			if reconnects != len(tc.fail) {
				t.Errorf("reconnects = %d, want %d (a refused batch ends the session)", reconnects, len(tc.fail))
			}
		})
	}
}

// Cancelling the watcher while the Sink holds a batch stops the pipeline:
// Run returns, and nothing the Sink did not accept is saved.
func TestSyncCancelWhileSinkBusy(t *testing.T) {
	srv, acct := setup(t, "Sent")
	appendN(t, srv, "Sent", 1, 30)
	sink := newGateSink(t)
	fc := &fetchCounter{}
	w := New(acct, testPass, sink, Options{Logger: testLogger(t), BatchSize: 10, DebugWriter: fc})
	stop := run(t, w)
	waitFor(t, 5*time.Second, "the pipeline to fill", func() bool { return fc.count() >= 2 })
	stop() // fails the test if Run does not return
	if st := sink.state("Sent"); st.LastUID != 0 {
		t.Errorf("state after cancel = %+v, want nothing saved", st)
	}
	if got := sink.uids("Sent"); len(got) != 0 {
		t.Errorf("accepted after cancel: %v", got)
	}
}

// deliver, alone: saves after each accepted batch, stops at the first
// error with the state of the last accepted one, and at a cancelled ctx.
func TestDeliver(t *testing.T) {
	mk := func(uids ...uint32) batch {
		b := batch{last: uids[len(uids)-1]}
		for _, u := range uids {
			b.recs = append(b.recs, &message.Record{UID: u, Mailbox: "Sent", MessageID: fmt.Sprint(u)})
		}
		return b
	}
	s := &session{w: &Watcher{name: testUser}, mailbox: "Sent", log: testLogger(t)}

	sink := newSink()
	s.w.sink = sink
	in := make(chan batch, 3)
	in <- mk(1, 2)
	in <- batch{last: 5} // 3-5 expunged: LastUID still moves
	in <- mk(6)
	close(in)
	st, err := s.deliver(context.Background(), in, State{UIDValidity: 7}, 0)
	if err != nil || st != (State{UIDValidity: 7, LastUID: 6}) {
		t.Errorf("deliver = %+v, %v; want LastUID 6", st, err)
	}
	if got := sink.state("Sent"); got != st {
		t.Errorf("saved %+v, want %+v", got, st)
	}

	sink = newSink()
	sink.failMessages = 1
	s.w.sink = sink
	in = make(chan batch, 1)
	in <- mk(7)
	st, err = s.deliver(context.Background(), in, State{UIDValidity: 7, LastUID: 6}, 0)
	if err == nil || st.LastUID != 6 {
		t.Errorf("deliver after a refusal = %+v, %v; want LastUID 6 and the error", st, err)
	}
	if got := sink.state("Sent"); got.LastUID != 0 {
		t.Errorf("refused batch saved: %+v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in = make(chan batch, 1)
	in <- mk(8)
	st, err = s.deliver(ctx, in, State{LastUID: 7}, 0)
	if !errors.Is(err, context.Canceled) || st.LastUID != 7 {
		t.Errorf("deliver with ctx cancelled = %+v, %v", st, err)
	}
}

// batchSink is a StateSink: it stores each batch and its state together
// and counts the SaveState calls deliver should no longer make.
type batchSink struct {
	*memSink
	refuse bool
	saves  int
	got    []State // the state handed with each batch
}

func (b *batchSink) HandleBatch(_ context.Context, account, mailbox string, recs []*message.Record, st State) error {
	if b.refuse {
		return errors.New("sink says no")
	}
	b.got = append(b.got, st)
	if len(recs) > 0 {
		if err := b.memSink.HandleMessages(context.Background(), recs); err != nil {
			return err
		}
	}
	return b.memSink.SaveState(account, mailbox, st)
}

func (b *batchSink) SaveState(account, mailbox string, st State) error {
	b.saves++
	return b.memSink.SaveState(account, mailbox, st)
}

// deliver hands a StateSink each batch with the LastUID at its end (also a
// batch whose UIDs were all expunged) and calls no SaveState; a refused
// batch's state is not saved.
func TestDeliverStateSink(t *testing.T) {
	s := &session{w: &Watcher{name: testUser}, mailbox: "Sent", log: testLogger(t)}
	sink := &batchSink{memSink: newSink()}
	s.w.sink = sink
	in := make(chan batch, 3)
	in <- batch{last: 2, recs: []*message.Record{{UID: 1, Mailbox: "Sent", MessageID: "1"}, {UID: 2, Mailbox: "Sent", MessageID: "2"}}}
	in <- batch{last: 5}
	in <- batch{last: 6, recs: []*message.Record{{UID: 6, Mailbox: "Sent", MessageID: "6"}}}
	close(in)
	st, err := s.deliver(context.Background(), in, State{UIDValidity: 7}, 0)
	if err != nil || st != (State{UIDValidity: 7, LastUID: 6}) {
		t.Errorf("deliver = %+v, %v; want LastUID 6", st, err)
	}
	var last []uint32
	for _, g := range sink.got {
		last = append(last, g.LastUID)
	}
	// All three were waiting: one call, with the state at the last one's end.
	if want := []uint32{6}; !slices.Equal(last, want) {
		t.Errorf("states handed with the batches: LastUID %v, want %v", last, want)
	}
	if sink.saves != 0 {
		t.Errorf("%d SaveState calls, want none (the state goes with each batch)", sink.saves)
	}
	if got, want := sink.uids("Sent"), []uint32{1, 2, 6}; !slices.Equal(got, want) {
		t.Errorf("uids %v, want %v", got, want)
	}

	// A batch whose UIDs were all expunged still advances the state.
	sink = &batchSink{memSink: newSink()}
	s.w.sink = sink
	in = make(chan batch, 1)
	in <- batch{last: 9}
	close(in)
	st, err = s.deliver(context.Background(), in, State{UIDValidity: 7, LastUID: 6}, 0)
	if err != nil || st.LastUID != 9 || len(sink.got) != 1 || sink.got[0].LastUID != 9 {
		t.Errorf("expunged batch: deliver = %+v, %v, handed %+v; want LastUID 9", st, err, sink.got)
	}

	sink = &batchSink{memSink: newSink(), refuse: true}
	s.w.sink = sink
	in = make(chan batch, 1)
	in <- batch{last: 7, recs: []*message.Record{{UID: 7, Mailbox: "Sent", MessageID: "7"}}}
	close(in)
	st, err = s.deliver(context.Background(), in, State{UIDValidity: 7, LastUID: 6}, 0)
	if err == nil || st.LastUID != 6 || sink.state("Sent").LastUID != 0 {
		t.Errorf("refused batch: deliver = %+v, %v, saved %+v; want the error, LastUID 6, nothing saved", st, err, sink.state("Sent"))
	}
}
