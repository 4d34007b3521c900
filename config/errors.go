package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string // path as given to Load or Parse
	Line int    // 1-based; 0 when the problem has no place (e.g. "no account")
	Key  string // key path with 0-based array indices: "account[1].imap.security"
	Msg  string
}

// String formats the problem as "FILE:LINE: key: msg", leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, in file order. Parse
// and Load return it (as error) whenever there is at least one problem.
type Errors struct {
	Problems []Problem
}

// Error prints one line per problem.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders problems by line, keeping the order of discovery within a
// line; problems without a line come first.
func (e *Errors) sort() {
	sort.SliceStable(e.Problems, func(i, j int) bool { return e.Problems[i].Line < e.Problems[j].Line })
}

// problems collects Problems for one file; lines come from the source index.
type problems struct {
	file  string
	lines *lineIndex
	list  []Problem
	// bad holds key paths that already have a problem, so a later check
	// does not pile a second, derived complaint on the same key (a delay
	// that failed to parse is not also "must be positive").
	bad map[string]bool
}

func newProblems(file string, lines *lineIndex) *problems {
	return &problems{file: file, lines: lines, bad: map[string]bool{}}
}

// addf records a problem at key, placed on the key's line (or the nearest
// enclosing table's line when the key is not written in the file).
func (ps *problems) addf(key string, format string, args ...any) {
	if ps.bad[key] {
		return
	}
	ps.bad[key] = true
	ps.list = append(ps.list, Problem{File: ps.file, Line: ps.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// addLine records a problem at an explicit line.
func (ps *problems) addLine(line int, key string, format string, args ...any) {
	if key != "" && ps.bad[key] {
		return
	}
	if key != "" {
		ps.bad[key] = true
	}
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// has reports whether key or a key under it already has a problem.
func (ps *problems) has(key string) bool { return ps.bad[key] }

// err returns the collected problems as *Errors, or nil when there are none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	e := &Errors{Problems: append([]Problem(nil), ps.list...)}
	e.sort()
	return e
}
