package config

import (
	"strings"
	"testing"
)

func TestExampleConfig(t *testing.T) {
	t.Setenv("FOLLOWUPD_MARIA_PASSWORD", "secret")
	c, err := Load("../config.example.toml")
	if err != nil {
		t.Fatalf("config.example.toml:\n%v", err)
	}
	var b strings.Builder
	c.Summary(&b)
	t.Log("\n" + b.String())
}
