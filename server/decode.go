package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// readBody reads the whole (size-limited) body. The problem says why it could not.
func readBody(c *gin.Context) ([]byte, *problem) {
	if c.Request.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, newProblem(http.StatusRequestEntityTooLarge, tooLargeDetail(tooLarge.Limit))
		}
		return nil, newProblem(http.StatusBadRequest, "could not read the request body: "+err.Error())
	}
	return data, nil
}

// decodeJSON reads the body into v strictly (unknown fields are errors, as a misspelt field
// silently ignored makes a different release than the caller meant). The problem says where
// the JSON went wrong; example is a valid body, shown to the caller when theirs is unusable.
func decodeJSON(c *gin.Context, v any, example string) *problem {
	data, p := readBody(c)
	if p != nil {
		return p
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return newProblem(http.StatusBadRequest, "the request body is empty; send JSON such as "+example)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errTrailingData
	}
	if err != nil {
		return newProblem(http.StatusBadRequest, jsonErrorDetail(data, err, dec.InputOffset())+"; send JSON such as "+example)
	}
	return nil
}

var errTrailingData = errors.New("trailing data")

// jsonErrorDetail says in words and with a line and column what is wrong with the JSON.
func jsonErrorDetail(data []byte, err error, offset int64) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("the body is not valid JSON: %s at %s", strings.TrimPrefix(syntax.Error(), "json: "), position(data, syntax.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return "the body must be a JSON object, not " + withArticle(typ.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s (at %s)", field, withArticle(jsonKind(typ.Type.Kind().String())), withArticle(typ.Value), position(data, typ.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of the JSON (at " + position(data, int64(len(data))) + ")"
	case errors.Is(err, errTrailingData):
		return "the body has more data after the JSON object (at " + position(data, offset) + ")"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "the body is not usable JSON: " + err.Error()
}

func jsonKind(kind string) string {
	switch kind {
	case "slice", "array":
		return "list"
	case "struct", "map":
		return "object"
	case "int", "int32", "int64", "float64", "float32":
		return "number"
	}
	return kind
}

func withArticle(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// position turns a byte offset into "line L, column C".
func position(data []byte, offset int64) string {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}
