package classify

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"followupd/config"
	"followupd/message"
)

func seed(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	if dir := corpusDir(f); dir != "" {
		more, _ := filepath.Glob(filepath.Join(dir, "*", "*.eml"))
		for i := 0; i < len(more); i += 9 {
			files = append(files, more[i])
		}
	}
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzIncoming: no panic; a bounce names a reason; a message citing our
// offer is never "unrelated": if it is a reply, it answers the offer.
func FuzzIncoming(f *testing.F) {
	seed(f)
	c, err := New(testConfig())
	if err != nil {
		f.Fatal(err)
	}
	cand := Candidate{MessageID: offerID, To: []message.Address{{Addr: "zakupki@buyer.example"}}, Subject: "offer", SentAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		ThreadIndex: "AdsZ9Kx0QUJDREVGR0hJSktMTU5PUA=="} // fuzzed Thread-Index headers reach threadIndexRoot
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, _ := message.Parse(bytes.NewReader(raw), 8192)
		rec.Role = message.RoleInbox
		_ = c.NeedsBody(rec)
		v := c.Incoming(rec)
		if len(v.Reasons) == 0 {
			t.Fatalf("verdict %s without reasons", v.Kind)
		}
		if v.Kind > KindBounce {
			t.Fatalf("kind %d", v.Kind)
		}
		if !v.ReturnDate.IsZero() && v.Kind != KindAutoReply {
			t.Fatalf("return date on a %s", v.Kind)
		}
		rec.InReplyTo = append([]string{offerID}, rec.InReplyTo...)
		ok, why := c.Answers(rec, cand, AnswerOptions{})
		if !rec.IsOwn() && rec.MessageID != offerID && !ok {
			t.Fatalf("a message citing the offer does not answer it: %s", why)
		}
		if rec.IsOwn() && ok {
			t.Fatal("an own message answers")
		}
	})
}

// FuzzSent: no panic; own, To-less and auto-submitted messages are never
// tracked; a tracked message names a rule and a reason.
func FuzzSent(f *testing.F) {
	seed(f)
	f.Add([]byte("To: a@buyer.example\r\nCc: ivan+fu3d@seller.example\r\nSubject: x\r\n\r\n"))
	f.Add([]byte("To: a@buyer.example\r\nSubject: Invoice 12\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename=invoice12.pdf\r\n\r\nx\r\n--b--\r\n"))
	c, err := New(testConfig())
	if err != nil {
		f.Fatal(err)
	}
	acct := &config.Account{Name: "ivan", Address: "ivan@seller.example"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, _ := message.Parse(bytes.NewReader(raw), 8192)
		rec.Role = message.RoleSent
		_ = c.NeedsBody(rec)
		v := c.Sent(acct, rec)
		if len(v.Reasons) == 0 {
			t.Fatal("no reasons")
		}
		if !v.Tracked {
			return
		}
		if v.Rule == "" {
			t.Fatal("tracked without a rule")
		}
		if rec.IsOwn() || len(rec.To) == 0 {
			t.Fatal("tracked an own or To-less message")
		}
		if a := rec.Headers["Auto-Submitted"]; a != "" && firstToken(a) != "no" && firstToken(a) != "No" && firstToken(a) != "NO" {
			t.Fatalf("tracked an auto-submitted message (%q)", a)
		}
	})
}
