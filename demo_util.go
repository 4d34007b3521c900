package main

import (
	"mime"
	"net"
)

func mimeQ(s string) string { return mime.BEncoding.Encode("utf-8", s) }

func splitHostPort(addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, "0"
	}
	return h, p
}
