package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that its answers hold
// together: every problem has the file and a line inside it, and a
// configuration without problems is complete.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.toml")
	seeds = append(seeds, "../config.example.toml")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(base))
	f.Add([]byte("[[a]]\n[[a.b]]\n[a.b.c]\nx = '''\n[[not]]\n'''\ny = [\n 1, # ]\n]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		nlines := strings.Count(string(data), "\n") + 1
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) == 0 {
				t.Fatalf("error is not a non-empty *Errors: %v", err)
			}
			for _, p := range errs.Problems {
				if p.File != "fuzz.toml" || p.Line < 0 || p.Line > nlines || p.Msg == "" {
					t.Fatalf("bad problem %+v (file has %d lines)", p, nlines)
				}
			}
			return
		}
		if c == nil || len(c.Accounts) == 0 || len(c.Rules) == 0 {
			t.Fatalf("valid config without accounts or rules: %+v", c)
		}
		for _, r := range c.Rules {
			for _, s := range r.Steps {
				tm := c.Template(s.Template)
				if tm == nil || tm.BodyT == nil || tm.SubjectT == nil || s.After.IsZero() {
					t.Fatalf("rule %s step %+v incomplete", r.Name, s)
				}
			}
		}
		for _, a := range c.Accounts {
			if a.IMAP.Port == 0 || a.SMTP.Port == 0 || a.Name == "" || c.Location(&a) == nil {
				t.Fatalf("account %+v incomplete", a)
			}
		}
	})
}
