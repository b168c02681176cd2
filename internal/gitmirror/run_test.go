package gitmirror

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// git's errors lose the clone password in the forms git prints it.
func TestHidePassword(t *testing.T) {
	const pw = "p@ss:w0rd/xyz"
	msg := "fatal: unable to access 'https://bot:" + url.QueryEscape(pw) + "@git.example/a.git/': 403\n" +
		"> Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("bot:"+pw)) + "\n" +
		"password " + pw
	got := hidePassword(msg, pw)
	for _, leak := range []string{"w0rd", "cDBzcz", "dzByZC"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q left in %q", leak, got)
		}
	}
	if hidePassword("ab here", "ab") != "ab here" {
		t.Error("a 2-character password masked noise")
	}
}
