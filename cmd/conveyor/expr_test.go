package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExprMain(t *testing.T) {
	dir := t.TempDir()
	ctxFile := filepath.Join(dir, "ctx.json")
	if err := os.WriteFile(ctxFile, []byte(`{"github": {"Ref": "refs/heads/main", "z": 1, "a": 2}, "custom": [1, 2]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"1 == 1"}, 0, `{"kind": "Boolean", "value": true}`, ""},
		{[]string{"format('{0}-{1}', 'a', 1.50)"}, 0, `{"kind": "String", "value": "a-1.5"}`, ""},
		{[]string{"--context-file", ctxFile, "github.ref"}, 0, `{"kind": "String", "value": "refs/heads/main"}`, ""},
		{[]string{"--context-file", ctxFile, "github"}, 0, `{"kind": "Object", "value": {"Ref":"refs/heads/main","z":1,"a":2}}`, ""},
		{[]string{"--context-file", ctxFile, "custom[1]"}, 0, `{"kind": "Number", "value": 2}`, ""},
		{[]string{"matrix.os"}, 0, `{"kind": "Null", "value": null}`, ""},
		{[]string{"--status", "failure", "failure()"}, 0, `{"kind": "Boolean", "value": true}`, ""},
		{[]string{"nosuch.foo"}, 1, "", "Unrecognized named-value: 'nosuch'. Located at position 1 within expression: nosuch.foo"},
		{[]string{"format('{1}', 1)"}, 1, "", "references more arguments"},
		{[]string{}, 2, "", "usage"},
		{[]string{"a", "b"}, 2, "", "usage"},
		{[]string{"--status", "weird", "1"}, 2, "", "--status"},
		{[]string{"--context-file", filepath.Join(dir, "missing.json"), "1"}, 1, "", "missing.json"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := exprMain(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if got := strings.TrimSpace(stdout.String()); got != tt.out {
				t.Errorf("stdout %q, want %q", got, tt.out)
			}
			if !strings.Contains(stderr.String(), tt.err) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.err)
			}
		})
	}
}
