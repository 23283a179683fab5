package rules

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // substring; "" means success
	}{
		{"object", `{"a":1}`, ""},
		{"array", `[1,2]`, "not a JSON object: the body is an array"},
		{"string", `"x"`, "not a JSON object: the body is a string"},
		{"number", `42`, "not a JSON object: the body is a number"},
		{"boolean", `true`, "not a JSON object: the body is a boolean"},
		{"null", `null`, "not a JSON object: the body is null"},
		{"surrounding space", " \n{\"a\":1}\t\n", ""},
		{"byte order mark", "\xef\xbb\xbf{\"a\":1}", ""},
		{"byte order mark twice", "\xef\xbb\xbf\xef\xbb\xbf{}", "invalid JSON: invalid character"},
		{"at the depth limit", `{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`, ""},
		{"over the depth limit", `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, "invalid JSON: nested deeper than 1000 levels"},
		{"brackets in strings", `{"a":"` + strings.Repeat("[{", MaxDepth) + `\"` + strings.Repeat("[", MaxDepth) + `"}`, ""},
		{"empty", ``, "invalid JSON: empty body"},
		{"only space", "  \n ", "invalid JSON: empty body"},
		{"bad", `{"a":}`, "invalid JSON: "},
		{"truncated", `{"a":1`, "invalid JSON: "},
		{"trailing value", `{"a":1}{"b":2}`, "invalid JSON: trailing data after offset 7"},
		{"trailing value after a byte order mark", "\xef\xbb\xbf{\"a\":1} 2", "invalid JSON: trailing data after offset 10"},
		{"trailing garbage", `{"a":1} xyz`, "invalid JSON: trailing data"},
		{"trailing bracket", `1]`, "invalid JSON: trailing data"},
		{"two scalars", `1 2`, "invalid JSON: trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Parse([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil || msg == nil {
					t.Fatalf("Parse(%q) = %v, %v; want a message", tt.body, msg, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) succeeded; want error containing %q", tt.body, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%q) error %q; want it to contain %q", tt.body, err, tt.wantErr)
			}
		})
	}
}

func TestParseErrorOmitsBody(t *testing.T) {
	secret := strings.Repeat("s3cr3t", 50)
	for _, body := range []string{
		`{"token":"` + secret + `",}`,
		`{"token":"` + secret + `"} trailing`,
		`{"token":"` + secret,
	} {
		_, err := Parse([]byte(body))
		if err == nil {
			t.Fatalf("Parse(%.20q...) succeeded; want error", body)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error %q leaks body content", err)
		}
	}
}

func TestStringify(t *testing.T) {
	msg, err := Parse([]byte(`{"s":"a<b>&c","n":12345678901234567890,"f":1.50,"t":true,"fa":false,"z":null,
		"o":{"b":1,"a":[1,"x",null]},"arr":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	root := msg.root.(map[string]any)
	tests := []struct{ key, want string }{
		{"s", "a<b>&c"},
		{"n", "12345678901234567890"},
		{"f", "1.50"},
		{"t", "true"},
		{"fa", "false"},
		{"z", ""},
		{"o", `{"a":[1,"x",null],"b":1}`},
		{"arr", `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := stringify(root[tt.key]); got != tt.want {
				t.Errorf("stringify(%s) = %q; want %q", tt.key, got, tt.want)
			}
		})
	}
}
