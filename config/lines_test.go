package config

import (
	"testing"

	"github.com/BurntSushi/toml"
)

const indexSample = `top = "a # not a comment [" # a comment ]
[[account]]
name = 'it"s # ['
imap = { host = "x", port = 1 }
[account.smtp]
host = "y"
[[account]]
"quoted key" = 1
[account.folders]
sent = "Sent"

[[rule]]
[rule.match]
subject = [
  '(?i)[a', # ] [
  "b]",
]
after_array = 1
[[rule.step]]
after = "1h"
[[rule.step]]
template = "t"
[[rule]]
[[rule.step]]
after = "2h"

[template."offer ru"]
body = """
[[account]]
fake = "inside the string \"""
"""
subject = '''
[[rule]]'''
html = "x"
a.b.c = 1
`

func TestIndexLines(t *testing.T) {
	x := indexLines(indexSample)
	tests := []struct {
		key  string
		line int
	}{
		{"top", 1},
		{"account", 2},
		{"account[0]", 2},
		{"account[0].name", 3},
		{"account[0].imap", 4},
		{"account[0].imap.host", 4}, // inline: the enclosing key's line
		{"account[0].smtp", 5},
		{"account[0].smtp.host", 6},
		{"account[1]", 7},
		{`account[1]."quoted key"`, 8},
		{"account[1].folders.sent", 10},
		{"account[1].smtp.host", 7}, // not written: the enclosing table
		{"rule[0].match.subject", 14},
		{"rule[0].match.subject[1]", 14},
		{"rule[0].match.after_array", 18},
		{"rule[0].step[0].after", 20},
		{"rule[0].step[1].template", 22},
		{"rule[1].step[0].after", 25},
		{`template."offer ru".body`, 28},
		{`template."offer ru".subject`, 32},
		{`template."offer ru".html`, 34},
		{`template."offer ru".a.b.c`, 35},
		{"account[2]", 2}, // no such element: the array
		{"rule[2]", 12},
		{"nothing", 0},
	}
	for _, tc := range tests {
		if got := x.line(tc.key); got != tc.line {
			t.Errorf("line(%s) = %d, want %d", tc.key, got, tc.line)
		}
	}
	if got := x.keyAt(20); got != "rule[0].step[0].after" {
		t.Errorf("keyAt(20) = %q", got)
	}
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"a":            "",
		"a.b":          "a",
		"a[3]":         "a",
		"a[3].b[0]":    "a[3].b",
		`t."x.y".body`: `t."x.y"`,
		`t."x.y"`:      "t",
		`t."a\"b.c"`:   "t",
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestIndexLinesSourceIsTOML(t *testing.T) {
	// The scanner test above must describe a file TOML accepts.
	var v map[string]any
	if _, err := toml.Decode(indexSample, &v); err != nil {
		t.Fatal(err)
	}
}
