package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"followupd/classify"
	"followupd/config"
	"followupd/message"
)

// corpus reads every message listed in ../shared/corpus/labels.tsv.
func corpus(b *testing.B) [][]byte {
	root, err := repoRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, "..", "shared", "corpus")
	labels, err := os.ReadFile(filepath.Join(dir, "labels.tsv"))
	if err != nil {
		b.Skipf("shared corpus not found next to the repository: %v", err)
	}
	var msgs [][]byte
	for i, line := range strings.Split(string(labels), "\n") {
		cols := strings.Split(line, "\t")
		if i == 0 || len(cols) < 2 {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, cols[0]))
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, raw)
	}
	return msgs
}

// BenchmarkClassifyCorpus runs every corpus message through what the
// daemon does with a fetched message on one core: the header parse (sync
// sees header fields first), NeedsBody, the full parse when asked, and the
// Incoming verdict. The limit is message.Parse alone (reading each message
// once with go-message), the least any classifier has to do.
func BenchmarkClassifyCorpus(b *testing.B) {
	sc := getScale()
	msgs := corpus(b)
	c, err := classify.New(&config.Config{})
	if err != nil {
		b.Fatal(err)
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	rounds := 1
	if sc.full {
		rounds = 20
	}
	full := func() {
		for _, raw := range msgs {
			rec, _ := message.ParseHeader(headerOf(raw))
			rec.Role = message.RoleInbox
			if c.NeedsBody(rec) {
				rec, _ = message.Parse(bytes.NewReader(raw), 64<<10)
				rec.Role = message.RoleInbox
			}
			c.Incoming(rec)
		}
	}
	parseOnly := func() {
		for _, raw := range msgs {
			message.Parse(bytes.NewReader(raw), 64<<10)
		}
	}
	timeIt := func(f func()) float64 {
		f() // warm
		t0 := time.Now()
		for range rounds {
			f()
		}
		return float64(rounds*len(msgs)) / time.Since(t0).Seconds()
	}
	// The figure without NeedsBody shortcuts: every message fully parsed.
	everything := func() {
		for _, raw := range msgs {
			rec, _ := message.Parse(bytes.NewReader(raw), 64<<10)
			rec.Role = message.RoleInbox
			c.Incoming(rec)
		}
	}
	b.ResetTimer()
	var rate, rateAll, limit float64
	for range b.N {
		rate = timeIt(full)
		rateAll = timeIt(everything)
		limit = timeIt(parseOnly)
	}
	b.ReportMetric(rate, "msgs/s")
	record(b, sc, row{
		Figure: "classify throughput (one core)", Value: fmt.Sprintf("%.0f msgs/s", rate),
		Limit: fmt.Sprintf("%.0f msgs/s (message.Parse alone)", limit), Ratio: fmt.Sprintf("%.2f", rate/limit),
		Target: "> 5,000 msgs/s", Verdict: verdict(rate > 5000),
		Notes: fmt.Sprintf("%d corpus messages × %d rounds, GOMAXPROCS=1; header parse + NeedsBody + full parse when needed + Incoming; always full parse: %.0f msgs/s", len(msgs), rounds, rateAll),
	})
}

// headerOf is the header block of raw (what HEADER.FIELDS returns, roughly).
func headerOf(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+4]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[:i+2]
	}
	return raw
}
