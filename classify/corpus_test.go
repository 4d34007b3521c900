package classify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"followupd/config"
	"followupd/message"
)

// corpusDir returns ../shared/corpus relative to the repository root (the
// directory holding go.mod), or "" when it is absent.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(c, "labels.tsv")); err != nil {
		return ""
	}
	return c
}

// wantKind maps a labels.tsv label to the verdict the daemon needs.
var wantKind = map[string]Kind{"bounce": KindBounce, "autoreply": KindAutoReply, "other": KindOther, "human": KindReply}

// TestCorpus runs every message of the shared corpus through Parse and
// Incoming and compares with its label. Bounces and auto-replies must be
// recognised (>= 90%), and a person's message must almost never be taken
// for an automatic one (that would send a reminder after a reply).
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	if dir == "" {
		t.Skip("shared corpus ../shared/corpus not found next to the repository")
	}
	b, err := os.ReadFile(filepath.Join(dir, "labels.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(&config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	total := map[string]int{}
	hit := map[string]int{}
	got := map[string]map[Kind]int{}
	var misses []string
	for i, line := range strings.Split(string(b), "\n") {
		cols := strings.Split(line, "\t")
		if i == 0 || len(cols) < 2 {
			continue
		}
		path, label := cols[0], cols[1]
		want, ok := wantKind[label]
		if !ok {
			t.Fatalf("labels.tsv line %d: unknown label %q", i+1, label)
		}
		raw, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := message.Parse(bytes.NewReader(raw), 0)
		rec.Role = message.RoleInbox
		v := c.Incoming(rec)
		total[label]++
		if got[label] == nil {
			got[label] = map[Kind]int{}
		}
		got[label][v.Kind]++
		if v.Kind == want {
			hit[label]++
		} else {
			misses = append(misses, fmt.Sprintf("%-9s got %-9s %s  %q  %s", label, v.Kind, path, rec.Subject, strings.Join(v.Reasons, "; ")))
		}
		// The header-only verdict (what sync sees before fetching a body)
		// must ask for the body whenever the full verdict is automatic.
		if v.Kind == KindBounce || v.Kind == KindAutoReply {
			hdr, _ := message.ParseHeader(raw)
			hdr.Role = message.RoleInbox
			if hv := c.Incoming(hdr); hv.Kind != v.Kind && !c.NeedsBody(hdr) {
				t.Errorf("%s: header-only verdict %s, full %s, and NeedsBody is false", path, hv.Kind, v.Kind)
			}
		}
	}
	labels := []string{"bounce", "autoreply", "other", "human"}
	t.Logf("%-10s %5s %5s %7s   got: %s", "label", "n", "hit", "acc", "other/reply/autoreply/bounce")
	for _, l := range labels {
		g := got[l]
		t.Logf("%-10s %5d %5d %6.1f%%   %d/%d/%d/%d", l, total[l], hit[l], 100*float64(hit[l])/float64(max(1, total[l])),
			g[KindOther], g[KindReply], g[KindAutoReply], g[KindBounce])
	}
	sort.Strings(misses)
	for _, m := range misses {
		t.Log("miss: " + m)
	}
	for _, l := range []string{"bounce", "autoreply"} {
		if acc := float64(hit[l]) / float64(max(1, total[l])); acc < 0.9 {
			t.Errorf("%s accuracy %.1f%% < 90%%", l, 100*acc)
		}
	}
	// A person's message taken for automatic mail is the worst mistake.
	if bad := got["human"][KindAutoReply] + got["human"][KindBounce]; bad > total["human"]/20 {
		t.Errorf("%d of %d human messages classified as auto-reply or bounce", bad, total["human"])
	}
}
