package message

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
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

// corpusFiles lists every message of the shared corpus (labels.tsv order).
func corpusFiles(t testing.TB) []string {
	t.Helper()
	dir := corpusDir(t)
	if dir == "" {
		t.Skip("shared corpus ../shared/corpus not found next to the repository")
	}
	b, err := os.ReadFile(filepath.Join(dir, "labels.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue
		}
		path, _, _ := strings.Cut(line, "\t")
		out = append(out, filepath.Join(dir, path))
	}
	return out
}

// TestCorpus parses every corpus message whole and by header alone: no
// panic, valid UTF-8 everywhere, a Message-ID always, and the header-only
// parse agrees with the whole parse on identity and threading.
func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	var errs, synthetic, withBody, withReport int
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		rec, err := Parse(bytes.NewReader(raw), 64<<10)
		if err != nil {
			errs++
			t.Logf("%s: %v", name, err)
		}
		if rec == nil {
			t.Fatalf("%s: nil record", name)
		}
		if rec.MessageID == "" {
			t.Errorf("%s: empty MessageID", name)
		}
		if rec.SyntheticID {
			synthetic++
		}
		if rec.Body != "" {
			withBody++
		}
		if rec.Report != nil {
			withReport++
		}
		for what, s := range map[string]string{"subject": rec.Subject, "body": rec.Body, "msgid": rec.MessageID} {
			if !utf8.ValidString(s) {
				t.Errorf("%s: %s is not valid UTF-8", name, what)
			}
		}
		if len(rec.Body) > 64<<10 {
			t.Errorf("%s: body %d bytes over the cap", name, len(rec.Body))
		}
		hdr, _ := ParseHeader(raw)
		// Identity must not depend on whether the body was fetched;
		// only a message without Date, From, To and Subject mixes its
		// body into the synthetic id.
		headerless := rec.Date.IsZero() && len(rec.From) == 0 && len(rec.To) == 0 && rec.Subject == ""
		if (hdr.MessageID != rec.MessageID && !headerless) || strings.Join(hdr.References, " ") != strings.Join(rec.References, " ") || hdr.Subject != rec.Subject {
			t.Errorf("%s: header-only parse differs: %q vs %q", name, hdr.MessageID, rec.MessageID)
		}
	}
	t.Logf("%d messages: %d with parse errors, %d synthetic ids, %d with body text, %d with report", len(files), errs, synthetic, withBody, withReport)
	if withBody < len(files)*9/10 {
		t.Errorf("only %d of %d messages have body text", withBody, len(files))
	}
}
