package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFamilies(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	fail := false
	m := New("test", func(ctx context.Context) (Snapshot, error) {
		if fail {
			return Snapshot{}, errors.New("store closed")
		}
		return Snapshot{
			Ready:      true,
			Folders:    []Folder{{Account: "a", Mailbox: "INBOX", Role: "inbox", Connected: true, Reconnects: 2, LastSync: t0}},
			States:     map[string]int{"waiting": 3},
			StateNames: []string{"waiting", "answered"},
		}, nil
	})
	m.Event("a", "sent")
	m.Event("a", "sent")
	m.Event("a", "failed")
	m.Event("a", "tracked")
	m.Indexed("a", 5)
	m.Indexed("a", 0)
	m.Answer("a", t0.Add(-time.Hour), t0.Add(-time.Minute), t0)
	m.Answer("a", time.Time{}, t0.Add(time.Minute), t0) // skew: counts 0
	m.IdleLag("a", t0.Add(-2*time.Second), t0)

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"sent", testutil.ToFloat64(m.sent.WithLabelValues("a")), 2},
		{"failed", testutil.ToFloat64(m.failed.WithLabelValues("a")), 1},
		{"events tracked", testutil.ToFloat64(m.events.WithLabelValues("a", "tracked")), 1},
		{"indexed", testutil.ToFloat64(m.indexed.WithLabelValues("a")), 5},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.answer); n != 2 {
		t.Errorf("answer latency series = %d, want 2 (date, arrival)", n)
	}

	const want = `
# HELP followupd_followups Follow-ups by state.
# TYPE followupd_followups gauge
followupd_followups{state="answered"} 0
followupd_followups{state="waiting"} 3
# HELP followupd_imap_connected 1 while the folder's IMAP connection is up.
# TYPE followupd_imap_connected gauge
followupd_imap_connected{account="a",mailbox="INBOX",role="inbox"} 1
# HELP followupd_imap_reconnects_total IMAP reconnects of the folder since start.
# TYPE followupd_imap_reconnects_total counter
followupd_imap_reconnects_total{account="a",mailbox="INBOX",role="inbox"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "followupd_followups", "followupd_imap_connected", "followupd_imap_reconnects_total"); err != nil {
		t.Error(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	addr, done, err := m.Serve(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, fam := range []string{"followupd_build_info", "followupd_ready 1", "followupd_answer_latency_seconds_bucket", "followupd_idle_lag_seconds_count", "followupd_messages_indexed_total", "go_goroutines"} {
		if !strings.Contains(string(body), fam) {
			t.Errorf("/metrics lacks %s", fam)
		}
	}

	// A broken source is an error in the scrape, counted, not a crash.
	fail = true
	if _, err := m.Registry().Gather(); err == nil {
		t.Error("gather with a failing source: no error")
	}
	if got := testutil.ToFloat64(m.scrapeErr); got != 1 {
		t.Errorf("scrape errors = %v, want 1", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("metrics server did not stop")
	}
	if _, _, err := m.Serve(context.Background(), "256.0.0.1:1", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "metrics: listen on") {
		t.Errorf("bad address: %v", err)
	}
}
