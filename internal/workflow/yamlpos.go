package workflow

import (
	"errors"
	"fmt"

	goyaml "github.com/goccy/go-yaml"
	goparser "github.com/goccy/go-yaml/parser"
)

// syntaxErrorAt finds where a YAML syntax error is. The YAML decoder
// (go.yaml.in/yaml/v3, as libyaml) names the line where the enclosing
// block starts ("line 2: did not find expected key" for a bad indentation
// on line 5) and no column; goccy/go-yaml's parser names the token where
// parsing failed. load keeps the decoder's answer when this one points
// before it (the two parsers disagree on a few inputs).
func syntaxErrorAt(data []byte) (pos Pos, msg string, ok bool) {
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		_, err = goparser.ParseBytes(data, 0)
	}()
	var se *goyaml.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil || se.Token.Position.Line < 1 {
		return Pos{}, "", false
	}
	return Pos{Line: se.Token.Position.Line, Col: max(se.Token.Position.Column, 1)}, se.Message, true
}
