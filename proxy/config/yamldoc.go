// YAML streams: cutting documents and turning library errors into
// one-line messages with the line in the whole file.

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

type document struct {
	text []byte
	line int // 1-based line of the document's first line in the file
}

// splitDocuments cuts a YAML stream at "---" and "..." marker lines. The
// library only reads single documents, and a marker at the start of a line
// always ends a document in YAML, even inside a block scalar. Documents of
// only white space are dropped.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur []byte
	curLine := 1
	flush := func() {
		if len(bytes.TrimSpace(cur)) > 0 {
			docs = append(docs, document{text: cur, line: curLine})
		}
		cur = nil
	}
	for i, l := range bytes.SplitAfter(data, []byte("\n")) {
		body := bytes.TrimRight(l, "\r\n")
		marker, rest := isDocMarker(body)
		if !marker {
			cur = append(cur, l...)
			continue
		}
		flush()
		curLine = i + 2
		if rest != nil {
			// "--- {a: 1}": the content starts the next document; blank
			// the marker so that columns stay where they were.
			cur = append(bytes.Repeat([]byte{' '}, len(body)-len(rest)), l[len(body)-len(rest):]...)
			curLine = i + 1
		}
	}
	flush()
	return docs
}

// isDocMarker reports a "---" or "..." line and any content after "--- ".
func isDocMarker(l []byte) (bool, []byte) {
	for _, m := range [][]byte{[]byte("---"), []byte("...")} {
		if !bytes.HasPrefix(l, m) {
			continue
		}
		rest := l[3:]
		if len(rest) == 0 {
			return true, nil
		}
		if rest[0] == ' ' || rest[0] == '\t' {
			rest = bytes.TrimLeft(rest, " \t")
			if len(rest) == 0 || rest[0] == '#' || m[0] == '.' {
				return true, nil
			}
			return true, rest
		}
	}
	return false, nil
}

func lineNote(line int) string {
	if line <= 1 {
		return ""
	}
	return fmt.Sprintf("document at line %d: ", line)
}

var (
	lineRef      = regexp.MustCompile(`line (\d+)`)
	unknownField = regexp.MustCompile(`unknown field "([^"]*)"`)
	prefixes     = []string{
		"error converting YAML to JSON: ", "error unmarshaling JSON: ",
		"while decoding JSON: ", "json: ", "yaml: ", "unmarshal errors: ",
	}
)

// yamlError turns a sigs.k8s.io/yaml error into one line that names the
// key and, where it can, the line in the whole file (first is the line of
// the document's first line).
func yamlError(err error, doc []byte, first int) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field, kind := te.Field, "a different type"
		if te.Type != nil {
			kind = describeType(te.Type.Kind().String())
		}
		msg := fmt.Sprintf("field %s: expected %s, got %s", quote(field), kind, te.Value)
		if l := findKey(doc, field[strings.LastIndexByte(field, '.')+1:]); l > 0 {
			return errorf("line %d: %s", l+first-1, msg)
		}
		return errorf("%s", msg)
	}
	msg := flatten(err.Error())
	for changed := true; changed; {
		changed = false
		for _, p := range prefixes {
			if rest, ok := strings.CutPrefix(msg, p); ok {
				msg, changed = rest, true
			}
		}
	}
	msg = strings.TrimPrefix(msg, "unmarshal errors: ")
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		if l := findKey(doc, m[1]); l > 0 {
			return errorf("line %d: unknown field %s", l+first-1, quote(m[1]))
		}
		return errorf("unknown field %s", quote(m[1]))
	}
	msg = lineRef.ReplaceAllStringFunc(msg, func(s string) string {
		n, err := strconv.Atoi(s[len("line "):])
		if err != nil {
			return s
		}
		return "line " + strconv.Itoa(n+first-1)
	})
	return errorf("%s", msg)
}

func describeType(kind string) string {
	switch kind {
	case "int", "int32", "int64", "uint16":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "map", "struct":
		return "a mapping"
	}
	return kind
}

// findKey returns the 1-based line of the first "key:" in doc, or 0.
func findKey(doc []byte, key string) int {
	if key == "" {
		return 0
	}
	re, err := regexp.Compile(`(^|[\s{,-])"?` + regexp.QuoteMeta(key) + `"?\s*:`)
	if err != nil {
		return 0
	}
	for i, l := range bytes.Split(doc, []byte("\n")) {
		if c := bytes.IndexByte(l, '#'); c >= 0 && bytes.IndexByte(l[:c], '"') < 0 && bytes.IndexByte(l[:c], '\'') < 0 {
			l = l[:c]
		}
		if re.Match(l) {
			return i + 1
		}
	}
	return 0
}
