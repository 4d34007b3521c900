package message

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// seedMessages adds testdata/*.eml and, when present, a sample of the
// shared corpus.
func seedMessages(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	if dir := corpusDir(f); dir != "" {
		more, _ := filepath.Glob(filepath.Join(dir, "*", "*.eml"))
		for i := 0; i < len(more); i += 7 {
			files = append(files, more[i])
		}
	}
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	seedMessages(f)
	f.Add([]byte("Message-ID: <a@b>\r\nIn-Reply-To: <x@y>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, _ := ParseHeader(raw)
		if rec == nil || rec.MessageID == "" {
			t.Fatal("no record or no Message-ID")
		}
		if !utf8.ValidString(rec.Subject) || !utf8.ValidString(rec.MessageID) {
			t.Fatal("invalid UTF-8 out")
		}
		// A header citing a Message-ID in In-Reply-To round-trips it.
		for _, id := range rec.InReplyTo {
			if id == "" || strings.ContainsAny(id, "<> \t\r\n") {
				continue
			}
			again, _ := ParseHeader([]byte("In-Reply-To: <" + id + ">\r\n"))
			if !slices.Equal(again.InReplyTo, []string{id}) {
				t.Fatalf("In-Reply-To <%s> parsed as %q", id, again.InReplyTo)
			}
		}
	})
}

func FuzzInReplyToRoundTrip(f *testing.F) {
	f.Add("20260302101500.4F2A@seller.example")
	f.Add("followupd.7.1.abcdef@seller.example")
	f.Add("CAF=x+y/z@mail.gmail.com")
	f.Fuzz(func(t *testing.T, id string) {
		// Ids never hold whitespace (RFC 5322 §3.6.4); whitespace inside
		// <> is taken for a wrapped line and dropped.
		if id == "" || !utf8.ValidString(id) || strings.ContainsAny(id, "<>\"'\x00") || strings.IndexFunc(id, unicode.IsSpace) >= 0 {
			t.Skip()
		}
		raw := "From: a@b\r\nIn-Reply-To: <" + id + ">\r\nReferences: <x@y>\r\n <" + id + ">\r\n\r\n"
		rec, _ := ParseHeader([]byte(raw))
		if !slices.Equal(rec.InReplyTo, []string{id}) {
			t.Fatalf("In-Reply-To <%s> parsed as %q", id, rec.InReplyTo)
		}
		if !slices.Contains(rec.ThreadIDs(), id) {
			t.Fatalf("ThreadIDs %q lack %q", rec.ThreadIDs(), id)
		}
	})
}

func FuzzParse(f *testing.F) {
	seedMessages(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, _ := Parse(bytes.NewReader(raw), 4096)
		if rec == nil || rec.MessageID == "" || !rec.HasBody {
			t.Fatal("no record, Message-ID or HasBody")
		}
		if len(rec.Body) > 4096 || !utf8.ValidString(rec.Body) {
			t.Fatalf("body %d bytes, valid UTF-8 %v", len(rec.Body), utf8.ValidString(rec.Body))
		}
		for _, a := range rec.Attachments {
			if !utf8.ValidString(a.Filename) {
				t.Fatal("invalid UTF-8 filename")
			}
		}
	})
}

func FuzzNormalizeSubject(f *testing.F) {
	for _, s := range []string{"Re: Fwd: [x] Offer", "Отв: Счет", "RE[2]: a", "回复：报价", "  ", "Re:Re:", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeSubject(s)
		if NormalizeSubject(n) != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, NormalizeSubject(n))
		}
		if NormalizeSubject("Re: "+s) != n {
			t.Fatalf("Re: prefix changes the result for %q", s)
		}
		if !utf8.ValidString(n) || n != strings.TrimSpace(n) {
			t.Fatalf("bad output %q", n)
		}
	})
}
