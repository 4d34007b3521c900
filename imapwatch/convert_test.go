package imapwatch

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"

	"followupd/message"
)

func TestParamValue(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"plain", map[string]string{"filename": "offer.pdf"}, "offer.pdf"},
		{"rfc2047 utf-8", map[string]string{"filename": "=?UTF-8?B?0KHRh9C10YIucGRm?="}, "Счет.pdf"},
		{"rfc2047 windows-1251", map[string]string{"filename": "=?windows-1251?B?0ffl8i5wZGY=?="}, "Счет.pdf"},
		{"rfc2231 utf-8", map[string]string{"filename*": "utf-8''%D0%A1%D1%87%D0%B5%D1%82.pdf"}, "Счет.pdf"},
		{"rfc2231 koi8-r", map[string]string{"filename*": "koi8-r'ru'%F3%DE%C5%D4.pdf"}, "Счет.pdf"},
		{"rfc2231 continued", map[string]string{
			"filename*1*": "%82.pdf", "filename*0*": "utf-8''%D0%A1%D1%87%D0%B5%D1",
		}, "Счет.pdf"},
		{"rfc2231 continued plain", map[string]string{"filename*0": "long-", "filename*1": "name.pdf"}, "long-name.pdf"},
		{"bad percent kept", map[string]string{"filename*": "utf-8''100%.pdf"}, "100%.pdf"},
		{"unknown charset kept", map[string]string{"filename*": "x-nope''abc.pdf"}, "abc.pdf"},
		{"absent", map[string]string{"name": "x"}, ""},
		{"nil", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := paramValue(tc.params, "filename"); got != tc.want {
				t.Errorf("paramValue = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAttachmentsFromBodyStructure(t *testing.T) {
	bs := &imap.BodyStructureMultiPart{
		Subtype: "mixed",
		Children: []imap.BodyStructure{
			&imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "utf-8"}},
			&imap.BodyStructureSinglePart{Type: "application", Subtype: "pdf",
				Extended: &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{
					Value: "attachment", Params: map[string]string{"filename*": "utf-8''%D0%A1%D1%87%D0%B5%D1%82%20%E2%84%965.pdf"}}}},
			&imap.BodyStructureSinglePart{Type: "Image", Subtype: "PNG", Params: map[string]string{"name": "logo.png"},
				Extended: &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{Value: "inline"}}},
			&imap.BodyStructureSinglePart{Type: "application", Subtype: "octet-stream",
				Extended: &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{Value: "ATTACHMENT"}}},
			&imap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822",
				MessageRFC822: &imap.BodyStructureMessageRFC822{BodyStructure: &imap.BodyStructureSinglePart{
					Type: "application", Subtype: "pdf", Params: map[string]string{"name": "inner.pdf"}}}},
		},
	}
	got := attachments(bs)
	want := []message.Attachment{
		{Filename: "Счет №5.pdf", ContentType: "application/pdf"},
		{Filename: "logo.png", ContentType: "image/png"},
		{Filename: "", ContentType: "application/octet-stream"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("attachments = %+v, want %+v", got, want)
	}
	report := &imap.BodyStructureMultiPart{Subtype: "REPORT", Extended: &imap.BodyStructureMultiPartExt{Params: map[string]string{"report-type": "Delivery-Status"}}}
	if got := contentType(report); got != "multipart/report; report-type=delivery-status" {
		t.Errorf("contentType = %q", got)
	}
}

// The same through a server: imapmemserver computes BODYSTRUCTURE.
func TestAttachmentsThroughServer(t *testing.T) {
	srv, acct := setup(t, "Sent")
	raw := "Message-ID: <att@example.com>\r\nFrom: " + testUser + "\r\nTo: c@customer.example\r\n" +
		"Subject: =?UTF-8?B?0KHRh9C10YI=?=\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n" +
		"--b\r\nContent-Type: application/pdf; name=\"=?windows-1251?B?0ffl8i5wZGY=?=\"\r\n" +
		"Content-Disposition: attachment; filename=\"=?windows-1251?B?0ffl8i5wZGY=?=\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
	if err := srv.Append(testUser, "Sent", []byte(raw)); err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	w := New(acct, testPass, sink, Options{Logger: testLogger(t)})
	run(t, w)
	waitReady(t, w)
	recs := sink.records("Sent")
	if len(recs) != 1 {
		t.Fatalf("records = %d", len(recs))
	}
	r := recs[0]
	want := []message.Attachment{{Filename: "Счет.pdf", ContentType: "application/pdf"}}
	if !slices.Equal(r.Attachments, want) || r.Subject != "Счет" || r.ContentType != "multipart/mixed" {
		t.Errorf("record = subject %q, type %q, attachments %+v; want Счет, multipart/mixed, %+v", r.Subject, r.ContentType, r.Attachments, want)
	}
}

func FuzzParamValue(f *testing.F) {
	f.Add("filename", "offer.pdf", "filename*0*", "utf-8''%D0%A1")
	f.Add("filename*", "koi8-r'ru'%F3%DE", "filename*1", "x")
	f.Add("filename", "=?windows-1251?B?0fc=?=", "filename*99999999999999999999", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		params := map[string]string{k1: v1, k2: v2}
		_ = paramValue(params, "filename")
		bs := &imap.BodyStructureSinglePart{Type: "application", Subtype: "pdf", Params: params,
			Extended: &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{Value: v1, Params: params}}}
		for _, a := range attachments(bs) {
			if a.ContentType != "application/pdf" {
				t.Fatalf("content type %q", a.ContentType)
			}
		}
	})
}
