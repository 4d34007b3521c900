package smtptest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const body = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

func start(t *testing.T, opt Options) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// send submits body over plain TCP (go-smtp's SendMail insists on
// STARTTLS).
func send(addr string, auth sasl.Client, to ...string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.SendMail("a@example.com", to, strings.NewReader(body)); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestRecordsAndWaits(t *testing.T) {
	var mu sync.Mutex
	var seen []Message
	s := start(t, Options{OnMessage: func(m Message) {
		mu.Lock()
		seen = append(seen, m)
		mu.Unlock()
	}})
	if s.Port() == 0 || s.Host() != "127.0.0.1" {
		t.Fatalf("addr %q", s.Addr())
	}

	type result struct {
		msgs []Message
		err  error
	}
	got := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		msgs, err := s.Wait(ctx, 2)
		got <- result{msgs, err}
	}()
	if err := send(s.Addr(), nil, "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := send(s.Addr(), nil, "c@example.com", "d@example.com"); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	msgs := r.msgs
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	if msgs[0].From != "a@example.com" || strings.Join(msgs[1].To, ",") != "c@example.com,d@example.com" {
		t.Errorf("envelopes: %+v", msgs)
	}
	if string(msgs[0].Data) != body {
		t.Errorf("data = %q, want %q", msgs[0].Data, body)
	}
	if msgs[0].At.IsZero() || msgs[0].User != "" {
		t.Errorf("At/User: %+v", msgs[0])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Errorf("OnMessage saw %d, want 2", len(seen))
	}
}

func TestWaitTimesOut(t *testing.T) {
	s := start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	msgs, err := s.Wait(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
		t.Fatalf("Wait = %v, %v", msgs, err)
	}
}

func TestAuth(t *testing.T) {
	s := start(t, Options{Users: map[string]string{"maria": "secret"}})
	if err := send(s.Addr(), nil, "b@example.com"); smtpCode(err) != 530 {
		t.Errorf("no auth: %v, want 530", err)
	}
	if err := send(s.Addr(), sasl.NewPlainClient("", "maria", "wrong"), "b@example.com"); smtpCode(err) != 535 {
		t.Errorf("bad password: %v, want 535", err)
	}
	if err := send(s.Addr(), sasl.NewPlainClient("", "maria", "secret"), "b@example.com"); err != nil {
		t.Fatalf("good password: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].User != "maria" {
		t.Fatalf("messages: %+v", msgs)
	}
}

func TestFailures(t *testing.T) {
	s := start(t, Options{})
	s.FailRecipient("Gone@Example.com", 550, "5.1.1", "no such user")
	err := send(s.Addr(), nil, "gone@example.com")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) || se.Message != "no such user" {
		t.Fatalf("rcpt failure: %#v", err)
	}
	s.FailRecipient("gone@example.com", 0, "", "")
	if err := send(s.Addr(), nil, "gone@example.com"); err != nil {
		t.Fatalf("after clearing: %v", err)
	}

	s.FailNext(2, 451, "try later")
	for i := 0; i < 2; i++ {
		if err := send(s.Addr(), nil, "b@example.com"); smtpCode(err) != 451 {
			t.Fatalf("FailNext #%d: %v", i, err)
		}
	}
	if err := send(s.Addr(), nil, "b@example.com"); err != nil {
		t.Fatalf("after FailNext ran out: %v", err)
	}
	if n := len(s.Messages()); n != 2 {
		t.Fatalf("%d messages recorded, want 2 (failed DATA is not recorded)", n)
	}
}

func TestHold(t *testing.T) {
	s := start(t, Options{})
	release := s.Hold()
	done := make(chan error, 1)
	go func() { done <- send(s.Addr(), nil, "b@example.com") }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitHeld(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("send finished while held: %v", err)
	default:
	}
	if n := len(s.Messages()); n != 0 {
		t.Fatalf("%d messages while held", n)
	}
	release()
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Fatalf("%d messages after release, want 1", n)
	}
}

// DropNext: the message is recorded, the client sees no reply (an error
// without an SMTP code), and the next DATA is answered as usual.
func TestDropNext(t *testing.T) {
	var on atomic.Int32
	s := start(t, Options{OnMessage: func(Message) { on.Add(1) }})
	s.DropNext(1)
	err := send(s.Addr(), nil, "b@example.com")
	if err == nil || smtpCode(err) != 0 {
		t.Fatalf("dropped DATA: %v, want an error without a reply", err)
	}
	if n := len(s.Messages()); n != 1 || on.Load() != 1 {
		t.Fatalf("dropped DATA: %d messages recorded, OnMessage %d times; want 1, 1", n, on.Load())
	}
	if err := send(s.Addr(), nil, "b@example.com"); err != nil {
		t.Fatalf("after DropNext ran out: %v", err)
	}
	if n := len(s.Messages()); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

func TestParseEnhanced(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		want smtp.EnhancedCode
	}{
		{"5.1.1", 550, smtp.EnhancedCode{5, 1, 1}},
		{"4.2.2", 452, smtp.EnhancedCode{4, 2, 2}},
		{"", 550, smtp.EnhancedCodeNotSet},
		{"5.1", 550, smtp.EnhancedCodeNotSet},
		{"4.1.1", 550, smtp.EnhancedCodeNotSet}, // class must match the code
		{"x.1.1", 550, smtp.EnhancedCodeNotSet},
	} {
		if got := parseEnhanced(tc.in, tc.code); got != tc.want {
			t.Errorf("parseEnhanced(%q, %d) = %v, want %v", tc.in, tc.code, got, tc.want)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := Start("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Start("127.0.0.1:0", Options{ImplicitTLS: true}); err == nil {
		t.Fatal("ImplicitTLS without TLSConfig accepted")
	}
}
