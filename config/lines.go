package config

import (
	"fmt"
	"strconv"
	"strings"
)

// lineIndex maps key paths ("account[1].imap.security") to the line that
// defines them.
//
// The TOML decoder's own positions are keyed by the path without array
// indices, so for [[account]] and [[rule]] they name the last element's
// line; and decoding stops at the first bad value. So followupd builds its
// own index by scanning the source: table headers ([a.b], [[a.b]], counted
// per enclosing array element the way TOML resolves them), and "key ="
// lines, skipping the insides of strings and multi-line values. Keys inside
// inline tables and multi-line arrays are not indexed; they resolve to the
// line of the nearest enclosing key, which is where they are written.
type lineIndex struct {
	lines map[string]int
}

// line returns the line of path, or of its nearest indexed ancestor; 0 when
// none is known.
func (x *lineIndex) line(path string) int {
	if x == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := x.lines[p]; ok {
			return l
		}
	}
	return 0
}

// keyAt returns the longest key path written on line, or "".
func (x *lineIndex) keyAt(line int) string {
	best := ""
	for p, l := range x.lines {
		if l == line && (len(p) > len(best) || len(p) == len(best) && p < best) {
			best = p
		}
	}
	return best
}

func (x *lineIndex) setFirst(path string, line int) {
	if _, ok := x.lines[path]; !ok {
		x.lines[path] = line
	}
}

// scanState carries what a value left open at the end of a line.
type scanState struct {
	ml    string // open multi-line string delimiter: `"""` or `'''`
	depth int    // open [ and { of a value spanning lines
}

// indexLines scans src. It never fails: on text it cannot follow it simply
// indexes less, and the TOML parser reports the syntax error.
func indexLines(src string) *lineIndex {
	x := &lineIndex{lines: map[string]int{}}
	arrays := map[string]int{} // resolved array-of-tables path → elements seen
	table := ""
	var st scanState
	for i, ln := range strings.Split(src, "\n") {
		no := i + 1
		if st.ml != "" || st.depth > 0 {
			st.scan(ln)
			continue
		}
		s := strings.TrimLeft(ln, " \t\ufeff")
		if s == "" || s[0] == '#' {
			continue
		}
		if s[0] == '[' {
			isArray := strings.HasPrefix(s, "[[")
			rest := s[1:]
			if isArray {
				rest = s[2:]
			}
			segs, _, ok := parseKey(rest)
			if !ok || len(segs) == 0 {
				continue
			}
			resolved := ""
			for k, seg := range segs {
				resolved = joinPath(resolved, seg)
				if k == len(segs)-1 && isArray {
					n := arrays[resolved]
					arrays[resolved] = n + 1
					x.setFirst(resolved, no)
					resolved = fmt.Sprintf("%s[%d]", resolved, n)
				} else if n := arrays[resolved]; n > 0 {
					resolved = fmt.Sprintf("%s[%d]", resolved, n-1)
				}
			}
			x.setFirst(resolved, no)
			table = resolved
			continue
		}
		segs, rest, ok := parseKey(s)
		if !ok || len(segs) == 0 {
			continue
		}
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		p := table
		for _, seg := range segs {
			p = joinPath(p, seg)
			x.setFirst(p, no)
		}
		st.scan(rest[1:])
	}
	return x
}

// scan follows a value's text through strings, brackets and comments.
func (st *scanState) scan(s string) {
	for i := 0; i < len(s); i++ {
		if st.ml != "" {
			j := strings.Index(s[i:], st.ml)
			if j < 0 {
				return
			}
			// A basic multi-line string may escape a quote: \""".
			if st.ml == `"""` && j > 0 && backslashes(s[:i+j])%2 == 1 {
				i += j
				continue
			}
			i += j + len(st.ml) - 1
			// Up to two more quotes may belong to the string ("""a"""").
			for i+1 < len(s) && s[i+1] == st.ml[0] {
				i++
			}
			st.ml = ""
			continue
		}
		switch c := s[i]; c {
		case '#':
			return
		case '[', '{':
			st.depth++
		case ']', '}':
			if st.depth > 0 {
				st.depth--
			}
		case '"', '\'':
			delim := string([]byte{c, c, c})
			if strings.HasPrefix(s[i:], delim) {
				st.ml = delim
				i += 2
				continue
			}
			// Single-line string: skip to its end.
			for i++; i < len(s); i++ {
				if c == '"' && s[i] == '\\' {
					i++
					continue
				}
				if s[i] == c {
					break
				}
			}
		}
	}
}

// backslashes counts the backslashes that end s.
func backslashes(s string) int {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n
}

// parseKey reads a dotted TOML key (bare, "basic" or 'literal' parts) from
// the start of s and returns its parts and the text after it, stopping at
// '=' or ']'.
func parseKey(s string) (segs []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		switch s[0] {
		case '"':
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, "", false
			}
			seg, err := strconv.Unquote(s[:end+1])
			if err != nil {
				seg = s[1:end]
			}
			segs = append(segs, seg)
			s = s[end+1:]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, "", false
			}
			segs = append(segs, s[1:end+1])
			s = s[end+2:]
		default:
			end := strings.IndexAny(s, " \t.=]#\"'")
			if end == 0 {
				return nil, "", false
			}
			if end < 0 {
				end = len(s)
			}
			segs = append(segs, s[:end])
			s = s[end:]
		}
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, ".") {
			s = s[1:]
			continue
		}
		return segs, s, true
	}
}

// keyPart quotes a key segment unless it is a bare key.
func keyPart(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(s)
		}
	}
	return s
}

// joinPath appends a key segment to a path.
func joinPath(p, seg string) string {
	if p == "" {
		return keyPart(seg)
	}
	return p + "." + keyPart(seg)
}

// indexPath appends an array index to a path.
func indexPath(p string, i int) string { return fmt.Sprintf("%s[%d]", p, i) }

// parentPath drops the last segment or index of a path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	inQuote := false
	last := -1
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case '.':
			if !inQuote {
				last = i
			}
		}
	}
	if last < 0 {
		return ""
	}
	return p[:last]
}
