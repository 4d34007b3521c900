package message

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// dsnHeader is the header of a bounce without Message-ID, as Exim and
// Mail.ru write them; two in the same second to the same sender differ only
// in the lines extra adds.
func dsnHeader(extra string) []byte {
	return []byte("Return-Path: <>\r\n" +
		"Date: Mon, 23 Nov 2026 10:01:00 +0300\r\n" +
		"From: Mail Delivery System <Mailer-Daemon@mx1.hosting.example>\r\n" +
		"To: ivan@seller.example\r\n" +
		"Subject: Mail delivery failed: returning message to sender\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		extra +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
}

// TestSyntheticIDSeparatesMessages: two different messages without
// Message-ID from the same sender, in the same second, with the same
// subject, get different ids when any header field we keep that the
// origin sets per message differs.
func TestSyntheticIDSeparatesMessages(t *testing.T) {
	check := func(name, extraA, extraB string) {
		t.Helper()
		a, _ := ParseHeader(dsnHeader(extraA))
		b, _ := ParseHeader(dsnHeader(extraB))
		if !a.SyntheticID || !b.SyntheticID {
			t.Fatalf("%s: want synthetic ids, got %q and %q", name, a.MessageID, b.MessageID)
		}
		if a.MessageID == b.MessageID {
			t.Errorf("%s: two different messages share the id %s", name, a.MessageID)
		}
	}
	check("X-Failed-Recipients", "X-Failed-Recipients: anna@client1.example\r\n", "X-Failed-Recipients: boris@client2.example\r\n")
	check("X-Failed-Recipients, one more", "X-Failed-Recipients: anna@client1.example\r\n", "X-Failed-Recipients: anna@client1.example, boris@client2.example\r\n")
	check("In-Reply-To (the bounced message)", "In-Reply-To: <offer-1@seller.example>\r\n", "In-Reply-To: <offer-2@seller.example>\r\n")
	check("References", "References: <offer-1@seller.example>\r\n", "References: <offer-2@seller.example>\r\n")
	check("Cc", "Cc: postmaster@seller.example\r\n", "")
	// A field's value must not slide into the next field's.
	check("field boundaries", "Cc: a@x.example\r\nX-Failed-Recipients: b@y.example\r\n", "Cc: a@x.example, b@y.example\r\n")
}

// TestSyntheticIDSameMessage: the same message seen again keeps its id:
// parsed twice, seen in another folder or at another UID, fetched with its
// body, its Sent copy (Bcc visible) and its delivered copy (Return-Path,
// List-Id, an Exchange Thread-Index added on the way).
func TestSyntheticIDSameMessage(t *testing.T) {
	raw := dsnHeader("X-Failed-Recipients: anna@client1.example\r\nIn-Reply-To: <offer-1@seller.example>\r\n")
	a, _ := ParseHeader(raw)
	b, _ := ParseHeader(raw)
	if a.MessageID != b.MessageID {
		t.Fatalf("same header parsed twice: %s, %s", a.MessageID, b.MessageID)
	}

	// Another folder, another UID, another UIDVALIDITY: still one message
	// (DESIGN invariant 6).
	moved := *a
	moved.Account, moved.Mailbox, moved.Role, moved.UIDValidity, moved.UID = "ivan", "Followup/Stop", RoleStop, 99, 7
	moved.Internal = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	moved.Flags = []string{`\Seen`, `\Flagged`}
	if got := SyntheticID(&moved); got != a.MessageID {
		t.Errorf("same message in another folder: %s, want %s", got, a.MessageID)
	}

	// The whole message (explain, a bounce whose body is fetched) gives
	// the id its header alone gave at sync.
	whole := append(append([]byte(nil), raw...), "This message was created automatically by mail delivery software.\r\n\r\n  anna@client1.example\r\n    550 No Such User Here\r\n"...)
	p, _ := Parse(bytes.NewReader(whole), 0)
	if p.MessageID != a.MessageID {
		t.Errorf("whole message: %s, header only: %s", p.MessageID, a.MessageID)
	}

	// Fields added on the way, or visible in one copy only, are no part
	// of the identity.
	sent, _ := ParseHeader([]byte("Date: Mon, 23 Nov 2026 10:00:00 +0300\r\nFrom: ivan@seller.example\r\nTo: anna@client.example\r\nBcc: ivan+fu2d@seller.example\r\nSubject: Offer\r\n\r\n"))
	delivered, _ := ParseHeader([]byte("Return-Path: <ivan@seller.example>\r\nList-Id: <sales.seller.example>\r\nThread-Index: AdsZ9Kx0QUJDREVGR0hJSktMTU5PUA==\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\nFrom: ivan@seller.example\r\nTo: anna@client.example\r\nSubject: Offer\r\n\r\n"))
	if sent.MessageID != delivered.MessageID {
		t.Errorf("Sent copy %s and delivered copy %s differ", sent.MessageID, delivered.MessageID)
	}

	// Case and spacing in X-Failed-Recipients are no difference.
	c, _ := ParseHeader(dsnHeader("X-Failed-Recipients: Anna@Client1.example ,boris@client2.example\r\n"))
	d, _ := ParseHeader(dsnHeader("X-Failed-Recipients: anna@client1.example, boris@client2.example\r\n"))
	if c.MessageID != d.MessageID {
		t.Errorf("X-Failed-Recipients spelling changes the id: %s, %s", c.MessageID, d.MessageID)
	}
}

// TestSyntheticIDUnchangedWithoutNewFields: a message with none of the
// fields added to the hash keeps the id earlier versions gave it, so a
// store written by them (and a refetch after a UIDVALIDITY change) still
// knows it: no second follow-up, no second verdict.
func TestSyntheticIDUnchangedWithoutNewFields(t *testing.T) {
	b, err := os.ReadFile("testdata/no-message-id.eml")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := ParseHeader(b)
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"testdata/no-message-id.eml", rec.MessageID, "synthetic.32344b484d08fc377c900324a5c5b538@followupd.invalid"},
		{"record", SyntheticID(&Record{Subject: "x", From: []Address{{Addr: "a@b"}}, To: []Address{{Addr: "c@d"}}, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}),
			"synthetic.75041a2928e7ffaf3f12effb6d509e93@followupd.invalid"},
		{"headerless, body only", SyntheticID(&Record{Body: "hello"}), "synthetic.5753fb54d6437de0a5f37cc8717667a9@followupd.invalid"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: id %s, want the earlier %s", tc.name, tc.got, tc.want)
		}
	}
}

// FuzzSyntheticIDHeaderOnly: whatever the message, its id from the header
// alone (sync) equals its id from the whole message (a fetched body,
// explain), unless it has no Date, From, To or Subject at all (then the
// body is all there is to tell it apart).
func FuzzSyntheticIDHeaderOnly(f *testing.F) {
	seedMessages(f)
	f.Add(dsnHeader("X-Failed-Recipients: a@b.example\r\nIn-Reply-To: <x@y>\r\nCc: c@d.example\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		hdr, _ := ParseHeader(raw)
		whole, _ := Parse(bytes.NewReader(raw), 4096)
		if !hdr.SyntheticID {
			return
		}
		headerless := whole.Date.IsZero() && len(whole.From) == 0 && len(whole.To) == 0 && whole.Subject == ""
		if hdr.MessageID != whole.MessageID && !headerless {
			t.Fatalf("header-only id %s, whole-message id %s", hdr.MessageID, whole.MessageID)
		}
		if !strings.HasPrefix(hdr.MessageID, "synthetic.") || !strings.HasSuffix(hdr.MessageID, "@"+SyntheticDomain) {
			t.Fatalf("id %q", hdr.MessageID)
		}
	})
}

// LegacySyntheticID is SyntheticID without the fields added later: equal
// for a message without them, different otherwise.
func TestLegacySyntheticID(t *testing.T) {
	plain, err := ParseHeader([]byte("From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if LegacySyntheticID(plain) != plain.MessageID {
		t.Errorf("plain message: legacy %s, id %s", LegacySyntheticID(plain), plain.MessageID)
	}
	cc, err := ParseHeader([]byte("From: a@x.test\r\nTo: b@y.test\r\nCc: c@z.test\r\nSubject: hi\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if LegacySyntheticID(cc) == cc.MessageID || LegacySyntheticID(cc) != LegacySyntheticID(plain) {
		t.Errorf("with Cc: legacy %s (plain %s), id %s", LegacySyntheticID(cc), LegacySyntheticID(plain), cc.MessageID)
	}
}
