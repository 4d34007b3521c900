package message

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseFile(t *testing.T, name string) (*Record, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Parse(f, 0)
}

func addrs(l []Address) []string {
	var out []string
	for _, a := range l {
		out = append(out, a.Addr)
	}
	return out
}

func TestParseFiles(t *testing.T) {
	tests := []struct {
		file        string
		wantErr     bool
		msgid       string
		synthetic   bool
		subject     string
		from        string
		fromName    string
		to          []string
		inReplyTo   []string
		references  []string
		date        string // RFC 3339, "" = zero
		contentType string
		bodyHas     []string
		bodyLacks   []string
		attachments []Attachment
		report      *Report
	}{
		{
			file: "cp1251-offer.eml", msgid: "20260302101500.4F2A@seller.example",
			subject: "Коммерческое предложение № 154", from: "ivan@seller.example", fromName: "Иван Петров",
			to:   []string{"zakupki@buyer.example", "john.smith@buyer.example"},
			date: "2026-03-02T10:15:00+03:00", contentType: "multipart/mixed",
			bodyHas: []string{"коммерческое предложение № 154 на поставку оборудования, цены действительны до конца месяца.\nС уважением", "Иван Петров"},
			attachments: []Attachment{
				{Filename: "Счет №154.pdf", ContentType: "application/pdf"},
				{Filename: "Прайс.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
			},
		},
		{
			file: "koi8r-reply.eml", msgid: "CAF=reply.123@buyer.example",
			subject: "Re: Коммерческое предложение N 154", from: "zakupki@buyer.example", fromName: "Отдел закупок",
			to:         []string{"ivan@seller.example"},
			inReplyTo:  []string{"20260302101500.4F2A@seller.example"},
			references: []string{"older.1@seller.example", "20260302101500.4F2A@seller.example"},
			date:       "2026-03-03T12:00:00+03:00", contentType: "text/plain",
			bodyHas: []string{"предложение получили, ответим до пятницы"},
		},
		{
			file: "raw8bit-subject.eml", synthetic: true,
			subject: "Ответ: Счет на оплату", from: "petr@buyer.example", fromName: "Пётр",
			to: []string{"ivan@seller.example"}, date: "2026-03-03T12:00:00+03:00", contentType: "text/plain",
			bodyHas: []string{"Счет получили"},
		},
		{
			file: "no-message-id.eml", synthetic: true, subject: "price list", from: "client@buyer.example",
			to: []string{"ivan@seller.example"}, date: "2026-03-04T09:00:00Z",
			bodyHas: []string{"price list"},
		},
		{
			file: "broken-mime.eml", wantErr: true, msgid: "broken.1@buyer.example",
			subject: "=?unknown-charset?B?SGVsbG8=?= world", from: "client@buyer.example", fromName: "Broken Mailer",
			to: []string{"ivan@seller.example", "anna@buyer.example"}, contentType: "multipart/mixed",
			bodyHas:     []string{"Hello, this is broken"},
			attachments: []Attachment{{Filename: "offer 12.pdf", ContentType: "application/pdf"}},
		},
		{
			file: "dsn-postfix.eml", msgid: "20260305101010.ABCDEF@mx.seller.example",
			subject: "Undelivered Mail Returned to Sender", from: "mailer-daemon@mx.seller.example",
			fromName: "Mail Delivery System", to: []string{"ivan@seller.example"}, date: "2026-03-05T10:10:10+03:00",
			contentType: "multipart/report; report-type=delivery-status",
			bodyHas:     []string{"could not\nbe delivered"},
			report: &Report{
				Recipients: []DSNRecipient{
					{FinalRecipient: "nobody@buyer.example", Action: "failed", Status: "5.1.1",
						Diagnostic: "550 5.1.1 <nobody@buyer.example>: Recipient address rejected: User unknown"},
					{FinalRecipient: "slow@buyer.example", Action: "delayed", Status: "4.4.1"},
				},
				OriginalMessageID: "20260302101500.4F2A@seller.example",
				OriginalTo:        []string{"nobody@buyer.example", "slow@buyer.example"},
			},
		},
		{
			file: "html-only.eml", msgid: "html.1@buyer.example", subject: "html", from: "client@buyer.example",
			to: []string{"ivan@seller.example"}, contentType: "text/html",
			bodyHas:   []string{"Я в отпуске до 15.03.2026", "Best regards,\nClient & Co"},
			bodyLacks: []string{"alert", "color", "<"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			rec, err := parseFile(t, tc.file)
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("err %v does not wrap ErrMalformed", err)
			}
			if tc.synthetic {
				if !rec.SyntheticID || !strings.HasPrefix(rec.MessageID, "synthetic.") || !strings.HasSuffix(rec.MessageID, "@"+SyntheticDomain) {
					t.Errorf("MessageID = %q synthetic=%v, want a synthetic id", rec.MessageID, rec.SyntheticID)
				}
			} else if rec.MessageID != tc.msgid || rec.SyntheticID {
				t.Errorf("MessageID = %q, want %q", rec.MessageID, tc.msgid)
			}
			if rec.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", rec.Subject, tc.subject)
			}
			if len(rec.From) != 1 || rec.From[0].Addr != tc.from || rec.From[0].Name != tc.fromName {
				t.Errorf("From = %+v, want %q <%s>", rec.From, tc.fromName, tc.from)
			}
			if got := addrs(rec.To); !reflect.DeepEqual(got, tc.to) {
				t.Errorf("To = %q, want %q", got, tc.to)
			}
			if !reflect.DeepEqual(rec.InReplyTo, tc.inReplyTo) {
				t.Errorf("InReplyTo = %q, want %q", rec.InReplyTo, tc.inReplyTo)
			}
			if !reflect.DeepEqual(rec.References, tc.references) {
				t.Errorf("References = %q, want %q", rec.References, tc.references)
			}
			var gotDate string
			if !rec.Date.IsZero() {
				gotDate = rec.Date.Format(time.RFC3339)
			}
			if gotDate != tc.date {
				t.Errorf("Date = %q, want %q", gotDate, tc.date)
			}
			if rec.ContentType != tc.contentType {
				t.Errorf("ContentType = %q, want %q", rec.ContentType, tc.contentType)
			}
			if !rec.HasBody {
				t.Error("HasBody = false")
			}
			for _, s := range tc.bodyHas {
				if !strings.Contains(rec.Body, s) {
					t.Errorf("Body lacks %q:\n%s", s, rec.Body)
				}
			}
			for _, s := range tc.bodyLacks {
				if strings.Contains(rec.Body, s) {
					t.Errorf("Body has %q:\n%s", s, rec.Body)
				}
			}
			if !reflect.DeepEqual(rec.Attachments, tc.attachments) {
				t.Errorf("Attachments = %+v, want %+v", rec.Attachments, tc.attachments)
			}
			if !reflect.DeepEqual(rec.Report, tc.report) {
				t.Errorf("Report = %+v, want %+v", rec.Report, tc.report)
			}
		})
	}
}

// TestParseHeaderMatchesParse: the header-only parse (sync) and the whole
// parse agree on identity and threading, so a message seen both ways is one.
func TestParseHeaderMatchesParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(raw)
		w, _ := parseFile(t, filepath.Base(f))
		if h.MessageID != w.MessageID || !reflect.DeepEqual(h.InReplyTo, w.InReplyTo) ||
			!reflect.DeepEqual(h.References, w.References) || h.Subject != w.Subject ||
			!reflect.DeepEqual(h.To, w.To) || !h.Date.Equal(w.Date) {
			t.Errorf("%s: ParseHeader and Parse disagree:\n%+v\n%+v", f, h, w)
		}
		if h.HasBody || h.Body != "" || h.Report != nil {
			t.Errorf("%s: ParseHeader read a body", f)
		}
	}
}

func TestParseHeader(t *testing.T) {
	check := func(raw string, want func(*Record) string) {
		t.Helper()
		rec, _ := ParseHeader([]byte(raw))
		if rec == nil {
			t.Fatalf("nil record for %q", raw)
		}
		if msg := want(rec); msg != "" {
			t.Errorf("%q: %s (record %+v)", raw, msg, rec)
		}
	}
	// Lenient Message-ID: first <...> token, junk around it.
	check("Message-ID: junk <a@b> <c@d>\n", func(r *Record) string {
		if r.MessageID != "a@b" || r.SyntheticID {
			return "want a@b"
		}
		return ""
	})
	check("Message-ID: a@b\n", func(r *Record) string {
		if r.MessageID != "a@b" {
			return "want bare a@b"
		}
		return ""
	})
	check("Message-ID: <>\nFrom: x@y\n", func(r *Record) string {
		if !r.SyntheticID {
			return "empty <> should give a synthetic id"
		}
		return ""
	})
	// No trailing blank line, CRLF, folded To.
	check("To: a@b,\r\n c@d\r\nSubject: s", func(r *Record) string {
		if len(r.To) != 2 || r.Subject != "s" {
			return "want two To and subject s"
		}
		return ""
	})
	// Auto-reply signals land in Headers with canonical keys; others dropped.
	check("auto-submitted: auto-replied\nX-AUTORESPOND: yes\nx-followupd: id=1; step=2\nReceived: from x\nSubject: s\n", func(r *Record) string {
		want := map[string]string{"Auto-Submitted": "auto-replied", "X-Autorespond": "yes", "X-Followupd": "id=1; step=2"}
		if !reflect.DeepEqual(r.Headers, want) {
			return "Headers wrong"
		}
		if !r.IsOwn() {
			return "X-Followupd should make it own"
		}
		return ""
	})
	// multipart/report keeps report-type; case folded.
	check("Content-Type: Multipart/Report; Report-Type=\"Delivery-Status\"; boundary=x\n", func(r *Record) string {
		if r.ContentType != "multipart/report; report-type=delivery-status" {
			return "ContentType " + r.ContentType
		}
		return ""
	})
	check("Content-Type: TEXT/PLAIN; charset=utf-8\n", func(r *Record) string {
		if r.ContentType != "text/plain" {
			return "ContentType " + r.ContentType
		}
		return ""
	})
	// Subjects in several charsets, split encoded words, Outlook's ';'.
	check("Subject: =?UTF-8?B?0KHRh9C10YI=?= =?UTF-8?B?INC90LAg0L7Qv9C70LDRgtGD?=\nTo: a@b; c@d\n", func(r *Record) string {
		if r.Subject != "Счет на оплату" {
			return "Subject " + r.Subject
		}
		if len(r.To) != 2 {
			return "want two To"
		}
		return ""
	})
	check("Subject: =?koi8-r?B?7sEg0M/E0MnT2A==?=\n", func(r *Record) string {
		if r.Subject != "На подпись" {
			return "Subject " + r.Subject
		}
		return ""
	})
	// Dates.
	for _, d := range []string{
		"Mon, 2 Mar 2026 10:15:00 +0300", "Mon, 2 Mar 2026 10:15:00 +0300 (MSK)", "2 Mar 2026 10:15:00 +0300",
		"Mon,2 Mar 2026 10:15:00 +0300", "Mon, 02 Mar 26 10:15:00 +0300",
		"Mon, 02 Mar 2026 10:15:00 +0300", "Mon, 02 Mar 2026 10:15:00 +0300 (MSK)", "Mon, 02 Mar 2026 07:15:00 +0000",
	} {
		check("Date: "+d+"\n", func(r *Record) string {
			if !r.Date.Equal(time.Date(2026, 3, 2, 7, 15, 0, 0, time.UTC)) {
				return "Date " + r.Date.String()
			}
			return ""
		})
	}
	check("Date: not a date\n", func(r *Record) string {
		if !r.Date.IsZero() {
			return "want zero date"
		}
		return ""
	})
}

func TestParseMessageIDs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"<a@b>", []string{"a@b"}},
		{"<a@b> <c@d>", []string{"a@b", "c@d"}},
		{"<a@b>,<c@d>", []string{"a@b", "c@d"}},
		{"<a@b><c@d>", []string{"a@b", "c@d"}},
		{"<a@b> <a@b>", []string{"a@b"}},
		{"a@b c@d", []string{"a@b", "c@d"}},
		{"<abc\r\n def@x>", []string{"abcdef@x"}},                  // wrapped inside the id
		{"Your message of Mon, 2 Mar 2026 <a@b>", []string{"a@b"}}, // RFC 822 free text
		{"<a@b", []string{"a@b"}},                                  // unterminated
		{"< <a@b>", []string{"a@b"}},                               // stray <
		{"<followupd.7.1.abcdef@seller.example>", []string{"followupd.7.1.abcdef@seller.example"}},
	}
	for _, tc := range tests {
		if got := ParseMessageIDs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMessageIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []Address
	}{
		{"", nil},
		{"A@B.example", []Address{{Addr: "a@b.example"}}},
		{`"Smith, John" <J@x.example>, b@y.example`, []Address{{Name: "Smith, John", Addr: "j@x.example"}, {Addr: "b@y.example"}}},
		{"a@x.example; b@y.example", []Address{{Addr: "a@x.example"}, {Addr: "b@y.example"}}},
		{"=?windows-1251?B?yOLg7Q==?= <ivan@x.example>", []Address{{Name: "Иван", Addr: "ivan@x.example"}}},
		{"undisclosed-recipients:;", nil},
		{"Team: a@x.example, b@x.example;", []Address{{Addr: "a@x.example"}, {Addr: "b@x.example"}}},
		{`"Broken <a@x.example>, ok@y.example`, []Address{{Name: "Broken", Addr: "a@x.example"}, {Addr: "ok@y.example"}}},
		{"Ivan Petrov (Sales) <ivan@x.example>", []Address{{Name: "Ivan Petrov", Addr: "ivan@x.example"}}}, // net/mail drops comments
		{"Mr. J. Smith <js@x.example>", []Address{{Name: "Mr. J. Smith", Addr: "js@x.example"}}},
		{"garbage, <>, x@y.example", []Address{{Addr: "x@y.example"}}},
	}
	for _, tc := range tests {
		if got := ParseAddressList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseAddressList(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestNormalizeSubject(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Коммерческое предложение", "коммерческое предложение"},
		{"Re: Коммерческое предложение", "коммерческое предложение"},
		{"RE: Re: FW: Offer", "offer"},
		{"Fwd: AW: WG: Angebot", "angebot"},
		{"Отв: Ответ: ОТВЕТ: Пересл: Счет №12", "счет №12"},
		{"Re[2]: Re(3): offer", "offer"},
		{"[EXT] Re: [sales] Offer  for   you ", "offer for you"},
		{"回复：报价", "报价"},
		{"Re:", ""},
		{"Reply about rent", "reply about rent"}, // "re" only with a colon
		{"Fwd : Re : x", "x"},
		{"Sv: Vs: x", "x"},
	}
	for _, tc := range tests {
		got := NormalizeSubject(tc.in)
		if got != tc.want {
			t.Errorf("NormalizeSubject(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := NormalizeSubject(got); again != got {
			t.Errorf("NormalizeSubject not idempotent on %q: %q", got, again)
		}
	}
}

func TestSyntheticIDStable(t *testing.T) {
	a := &Record{Subject: "x", From: []Address{{Addr: "a@b"}}, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := *a
	b.Body = "body does not change identity"
	b.Date = a.Date.In(time.FixedZone("MSK", 3*3600))
	if SyntheticID(a) != SyntheticID(&b) {
		t.Error("SyntheticID depends on body or zone")
	}
	c := *a
	c.Subject = "y"
	if SyntheticID(a) == SyntheticID(&c) {
		t.Error("SyntheticID ignores the subject")
	}
	empty1, empty2 := &Record{Body: "one"}, &Record{Body: "two"}
	if SyntheticID(empty1) == SyntheticID(empty2) {
		t.Error("headerless messages with different bodies share an id")
	}
}
