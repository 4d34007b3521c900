package send

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"followupd/config"
	"followupd/internal/smtptest"
	"followupd/message"
)

func testMessage() *Message {
	return &Message{
		From:      message.Address{Name: "followupd", Addr: "ivan@seller.example"},
		To:        []message.Address{{Name: "Иван Петров", Addr: "ivan@seller.example"}, {Addr: "boss@seller.example"}},
		Subject:   "Follow-ups: 3 waiting, 1 needs you",
		MessageID: message.NewOwnMessageID("seller.example", 0, 0),
		Date:      time.Date(2026, 11, 24, 8, 30, 0, 0, time.FixedZone("MSK", 3*3600)),
		Text:      "3 waiting.\nСчёт №12 ждёт ответа.\n",
		HTML:      "<p>3 waiting. <b>Счёт №12</b></p>",
		Kind:      "summary",
	}
}

func TestBuildMessage(t *testing.T) {
	m := testMessage()
	raw, err := BuildMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, raw)
	if p.ctype != "multipart/alternative" {
		t.Errorf("content type %q", p.ctype)
	}
	if !strings.Contains(p.text, "Счёт №12 ждёт ответа.") || !strings.Contains(p.html, "<b>Счёт №12</b>") {
		t.Errorf("parts: text %q html %q", p.text, p.html)
	}
	for k, want := range map[string]string{
		"X-Followupd":    "kind=summary",
		"Auto-Submitted": "auto-generated",
		"Message-Id":     "<" + m.MessageID + ">",
		"In-Reply-To":    "",
		"References":     "",
	} {
		if got := p.hdr.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	rec, err := message.ParseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.IsOwn() {
		t.Error("a built message is not recognised as our own")
	}
	// Text only: a single text/plain part.
	m.HTML = ""
	raw, err = BuildMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if p := parse(t, raw); p.ctype != "text/plain" {
		t.Errorf("text-only content type %q", p.ctype)
	}
}

func TestBuildMessageRejects(t *testing.T) {
	for name, mut := range map[string]func(*Message){
		"no sender":    func(m *Message) { m.From.Addr = "" },
		"no recipient": func(m *Message) { m.To = nil },
		"no text":      func(m *Message) { m.Text = " \n" },
		"bad id":       func(m *Message) { m.MessageID = "no-at-sign" },
		"no date":      func(m *Message) { m.Date = time.Time{} },
		"bad to":       func(m *Message) { m.To = []message.Address{{Addr: "not an address"}} },
	} {
		m := testMessage()
		mut(m)
		if _, err := BuildMessage(m); err == nil {
			t.Errorf("%s: built", name)
		}
	}
	if _, err := BuildMessage(nil); err == nil {
		t.Error("nil message built")
	}
	// Header injection through the subject stays one header.
	m := testMessage()
	m.Subject = "hi\r\nBcc: victim@example.com"
	raw, err := BuildMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if p := parse(t, raw); p.hdr.Get("Bcc") != "" {
		t.Errorf("subject injected a header: %v", p.hdr)
	}
}

func TestSubmitMessage(t *testing.T) {
	srv := startServer(t, smtptest.Options{Users: map[string]string{"ivan": "pw"}})
	sub := submitter(t, account(srv.Host(), srv.Port(), config.SecurityNone), "pw")
	m := testMessage()
	raw, err := BuildMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SubmitMessage(context.Background(), m, raw); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].From != "ivan@seller.example" || strings.Join(msgs[0].To, ",") != "ivan@seller.example,boss@seller.example" || !bytes.Equal(msgs[0].Data, raw) {
		t.Fatalf("server got %+v", msgs)
	}
	var e *Error
	if err := sub.SubmitMessage(context.Background(), nil, raw); !errors.As(err, &e) || !e.Permanent {
		t.Errorf("nil message: %v", err)
	}
}
