package mailtest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer answers each line with the same line until the client goes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, line string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return got, err
}

func TestProxy(t *testing.T) {
	t.Parallel()
	p := NewProxy(t, echoServer(t))

	c1, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if got, err := roundTrip(c1, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}

	// Cut ends the live connection.
	p.Cut()
	c1.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Cut succeeded")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after Cut: %v", err)
	}

	// Paused: new connections are dropped at once; unpaused: served again.
	p.Pause(true)
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_, err = roundTrip(c2, "refused?")
		c2.Close()
	}
	if err == nil {
		t.Fatal("a connection made while paused worked")
	}
	p.Pause(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, "again"); err != nil || got != "again\n" {
		t.Fatalf("after unpausing: %q, %v", got, err)
	}
}

func TestProxyPauseKeepsLiveConnections(t *testing.T) {
	t.Parallel()
	p := NewProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := roundTrip(c, "one"); err != nil {
		t.Fatal(err)
	}
	p.Pause(true)
	if got, err := roundTrip(c, "two"); err != nil || got != "two\n" {
		t.Fatalf("live connection while paused: %q, %v", got, err)
	}
}

func TestProxyTargetDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p := NewProxy(t, dead)
	// The reset may come at connect or at the first read.
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_, err = roundTrip(c, "anyone?")
		c.Close()
	}
	if err == nil {
		t.Fatal("a proxy to a dead target answered")
	}
}
