package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/conveyor-ci/conveyor/internal/expr"
)

// exprMain evaluates one ${{ }} expression (without the braces) and prints
// {"kind": ..., "value": ...}.
func exprMain(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("expr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	contextFile := fs.String("context-file", "", "JSON object of contexts (github, env, matrix, ...)")
	status := fs.String("status", "success", "job status for success()/failure()/cancelled(): success, failure or cancelled")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conveyor expr [--context-file F.json] [--status S] 'EXPR'")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	c := &expr.Context{Values: map[string]any{}}
	switch *status {
	case "success":
	case "failure":
		c.Status.Failed = true
	case "cancelled":
		c.Status.Cancelled = true
	default:
		fmt.Fprintf(stderr, "conveyor expr: --status must be success, failure or cancelled, not %q\n", *status)
		return 2
	}
	names := append([]string(nil), expr.StandardContexts...)
	if *contextFile != "" {
		data, err := os.ReadFile(*contextFile)
		if err != nil {
			fmt.Fprintln(stderr, "conveyor expr:", err)
			return 1
		}
		obj := expr.NewObject()
		if err := json.Unmarshal(data, obj); err != nil {
			fmt.Fprintf(stderr, "conveyor expr: %s: want a JSON object of contexts: %v\n", *contextFile, err)
			return 1
		}
		for _, k := range obj.Keys() {
			c.Values[k], _ = obj.Get(k)
			names = append(names, k)
		}
	}
	if wd, err := os.Getwd(); err == nil {
		c.HashFiles = expr.HashFilesIn(wd)
	}
	e, err := expr.Parse(fs.Arg(0), names)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	v, err := e.Eval(c)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "{\"kind\": %q, \"value\": %s}\n", expr.KindOf(v), expr.CompactJSON(v))
	return 0
}
