package runbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Hash identifies a runbook's content: "sha256:" and the hex SHA-256 of its JSON encoding,
// the form a release carries in its workflow input. The encoding is canonical enough: struct
// fields come in declaration order and encoding/json sorts map keys, so reformatting the YAML
// (whitespace, comments, key order, anchors) keeps the hash, and any change of content
// changes it. Hash the resolved runbook (LoadResolved does) so an edit of its base shows too.
// It returns "" for a runbook JSON cannot encode (a NaN or infinite number), which a
// workflow could not carry either.
func Hash(rb Runbook) string {
	b, err := json.Marshal(rb)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
