package message

import (
	"reflect"
	"testing"
	"time"
)

// imapSide is what a sync sets on a record from the server's answer, the
// way imapwatch's toRecord does after the header parse.
func imapSide(r *Record) {
	r.Account, r.Mailbox, r.Role, r.UIDValidity, r.UID = "work", "INBOX", RoleInbox, 7, 42
	r.Internal = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	r.Flags = []string{`\Seen`}
	r.Attachments = []Attachment{{Filename: "offer.pdf", ContentType: "application/pdf"}}
	if r.Date.IsZero() {
		r.Date = r.Internal
	}
	if r.ContentType == "" {
		r.ContentType = "multipart/mixed"
	}
}

// A shallow record deepened is the record a full parse gives.
func FuzzShallowDeepen(f *testing.F) {
	for _, h := range benchHeaders {
		f.Add(h)
	}
	f.Add([]byte("Message-ID: <a@b>\r\nDate: garbage\r\nSubject: =?koi8-r?b?8NLJ18XU?=\r\n\r\n"))
	f.Add([]byte("Message-ID:\r\n <folded@b>\r\nFrom: x\r\n\r\n"))
	f.Add([]byte("Subject: no id\r\n\r\n"))
	f.Add([]byte("Message-ID: <r@x>\r\nIn-Reply-To:\r\n <a@x>\r\nReferences: <b@x>\r\n <c@x>\r\nIn-Reply-To: <d@x>\r\n\r\n"))
	f.Add([]byte("Message-ID\f: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n"))
	f.Add([]byte("Message-ID: <a@x>\r\nDate\u00a0: Tue, 03 Mar 2026 10:00:00 +0300\r\nDate: Tue, 03 Mar 2006 10:00:00 +0300\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		sh, ok := ParseShallow(raw)
		if !ok {
			return
		}
		full, ferr := ParseHeader(raw)
		if sh.MessageID != full.MessageID {
			t.Fatalf("shallow id %q, full %q", sh.MessageID, full.MessageID)
		}
		// What it cites decides history too (the daemon's horizon).
		if !reflect.DeepEqual(sh.ThreadIDs(), full.ThreadIDs()) {
			t.Fatalf("shallow cites %q, full %q", sh.ThreadIDs(), full.ThreadIDs())
		}
		imapSide(sh)
		imapSide(full)
		if !sh.Date.Equal(full.Date) {
			t.Fatalf("shallow date %v, full %v", sh.Date, full.Date)
		}
		derr := sh.Deepen()
		if (derr == nil) != (ferr == nil) {
			t.Fatalf("errors differ: deepen %v, full %v", derr, ferr)
		}
		if sh.Raw != nil || !reflect.DeepEqual(sh, full) {
			t.Fatalf("deepened %#v\nfull     %#v", sh, full)
		}
	})
}

func BenchmarkParseShallow(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		if _, ok := ParseShallow(benchHeaders[i%len(benchHeaders)]); !ok {
			b.Fatal("no id")
		}
	}
}
