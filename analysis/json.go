package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Values here are often NaN (an error ratio with no traffic) or ±Inf, which encoding/json
// refuses to write, and Temporal encodes activity results and heartbeat details as JSON. So
// the types carrying them write such values as the strings "NaN", "+Inf" and "-Inf", the way
// Prometheus' API does, and read them back.

type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(math.IsNaN(v) || math.IsInf(v, 0)) {
			return fmt.Errorf("want a number, NaN, +Inf or -Inf, got %q", s)
		}
		*f = jsonFloat(v)
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// The outer fields shadow the embedded ones of the same JSON name.

// MarshalJSON writes NaN and ±Inf as strings.
func (m Measurement) MarshalJSON() ([]byte, error) {
	type plain Measurement
	return json.Marshal(struct {
		plain
		Value    jsonFloat  `json:"value"`
		Baseline *jsonFloat `json:"baseline,omitempty"`
	}{plain(m), jsonFloat(m.Value), (*jsonFloat)(m.Baseline)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *Measurement) UnmarshalJSON(b []byte) error {
	type plain Measurement
	aux := struct {
		*plain
		Value    jsonFloat  `json:"value"`
		Baseline *jsonFloat `json:"baseline,omitempty"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	m.Value, m.Baseline = float64(aux.Value), (*float64)(aux.Baseline)
	return nil
}

// MarshalJSON writes NaN and ±Inf as strings.
func (c CheckState) MarshalJSON() ([]byte, error) {
	type plain CheckState
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"value"`
	}{plain(c), jsonFloat(c.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *CheckState) UnmarshalJSON(b []byte) error {
	type plain CheckState
	aux := struct {
		*plain
		Value jsonFloat `json:"value"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	c.Value = float64(aux.Value)
	return nil
}

// MarshalJSON writes NaN and ±Inf as strings.
func (r BurnResult) MarshalJSON() ([]byte, error) {
	type plain BurnResult
	return json.Marshal(struct {
		plain
		Long  jsonFloat `json:"long"`
		Short jsonFloat `json:"short"`
	}{plain(r), jsonFloat(r.Long), jsonFloat(r.Short)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *BurnResult) UnmarshalJSON(b []byte) error {
	type plain BurnResult
	aux := struct {
		*plain
		Long  jsonFloat `json:"long"`
		Short jsonFloat `json:"short"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.Long, r.Short = float64(aux.Long), float64(aux.Short)
	return nil
}
