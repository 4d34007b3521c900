package imapwatch

import (
	"context"
	"fmt"
	"testing"

	"followupd/imapwatch/imaptest"
	"followupd/message"
)

// countSink counts messages and cancels when n have arrived.
type countSink struct {
	*memSink
	n, got int
	done   func()
}

func (s *countSink) HandleMessages(_ context.Context, recs []*message.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got += len(recs)
	if s.got >= s.n {
		s.done()
	}
	return nil
}

// BenchmarkInitialSync measures the header sync of a 5,000-message Sent
// folder from imapmemserver (per-message cost in ns/op ÷ 5000).
func BenchmarkInitialSync(b *testing.B) {
	const n = 5000
	srv := imaptest.NewServer(b)
	if err := srv.AddUser(testUser, testPass, "Sent"); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := srv.Append(testUser, "Sent", rawMsg(i, fmt.Sprintf("Коммерческое предложение %d", i))); err != nil {
			b.Fatal(err)
		}
	}
	acct := srv.Account(testUser)
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		sink := &countSink{memSink: newSink(), n: n, done: cancel}
		w := New(acct, testPass, sink, Options{})
		if err := w.Run(ctx); err != nil {
			b.Fatal(err)
		}
		if sink.got < n {
			b.Fatalf("synced %d of %d", sink.got, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}
