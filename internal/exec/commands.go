package exec

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// command is a workflow command printed by a step: ::name k=v,k=v::data
type command struct {
	Name  string
	Props map[string]string
	Data  string
}

// parseCommand reads a workflow command from a line, as the GitHub runner
// does: the line (leading spaces allowed) starts with "::", the name ends at
// a space or "::", properties are comma-separated k=v pairs.
func parseCommand(line string) (command, bool) {
	s := strings.TrimLeft(line, " \t")
	if !strings.HasPrefix(s, "::") {
		return command{}, false
	}
	s = s[2:]
	end := strings.Index(s, "::")
	if end < 0 {
		return command{}, false
	}
	head, data := s[:end], s[end+2:]
	name, props, _ := strings.Cut(head, " ")
	if name == "" {
		return command{}, false
	}
	c := command{Name: name, Data: unescapeData(data)}
	if props = strings.TrimSpace(props); props != "" {
		c.Props = map[string]string{}
		for _, kv := range strings.Split(props, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				continue
			}
			c.Props[strings.TrimSpace(k)] = unescapeProp(v)
		}
	}
	return c, true
}

var dataUnescaper = strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%")
var propUnescaper = strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%")

func unescapeData(s string) string { return dataUnescaper.Replace(s) }
func unescapeProp(s string) string { return propUnescaper.Replace(s) }

// kvPair is one entry of an environment file.
type kvPair struct{ Key, Value string }

// parseEnvFile reads GITHUB_ENV / GITHUB_OUTPUT / GITHUB_STATE content:
// NAME=value lines and NAME<<DELIM heredocs, as the GitHub runner accepts.
func parseEnvFile(r io.Reader) ([]kvPair, error) {
	var out []kvPair
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		eq := strings.Index(line, "=")
		hd := strings.Index(line, "<<")
		if eq >= 0 && (hd < 0 || eq < hd) {
			k := line[:eq]
			if k == "" {
				return nil, errs.E("env file", errs.Invalid, "line %d: empty name", lineNo)
			}
			out = append(out, kvPair{k, line[eq+1:]})
			continue
		}
		if hd < 0 {
			return nil, errs.E("env file", errs.Invalid, "line %d: %q is neither NAME=value nor NAME<<DELIMITER", lineNo, line)
		}
		k, delim := line[:hd], line[hd+2:]
		if k == "" || delim == "" {
			return nil, errs.E("env file", errs.Invalid, "line %d: empty name or delimiter", lineNo)
		}
		var val []string
		closed := false
		for sc.Scan() {
			lineNo++
			l := strings.TrimSuffix(sc.Text(), "\r")
			if l == delim {
				closed = true
				break
			}
			val = append(val, l)
		}
		if !closed {
			return nil, errs.E("env file", errs.Invalid, "matching delimiter %q not found for %s", delim, k)
		}
		out = append(out, kvPair{k, strings.Join(val, "\n")})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	return out, nil
}
