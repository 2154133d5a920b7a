package llm

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// AnyModel is the Prices key whose price applies to a model with no entry
// of its own. Without it, such a model is refused.
const AnyModel = "*"

// Price is what the provider charges for a model, in US dollars per million
// tokens.
type Price struct {
	Input  float64 `json:"input"`
	Output float64 `json:"output"`
}

// Cost returns the price of in input and out output tokens, in dollars.
func (p Price) Cost(in, out int64) float64 {
	return (float64(in)*p.Input + float64(out)*p.Output) / 1e6
}

// Prices is the operator's price table (VEGA_LLM_PRICES): model name to
// Price. A model matches its exact name, then the longest key that is a
// prefix of it followed by '-' (a dated snapshot such as
// gpt-4o-mini-2024-07-18 uses gpt-4o-mini), then AnyModel.
type Prices map[string]Price

// DefaultPrices returns the price table used when VEGA_LLM_PRICES is unset:
// list prices of common OpenAI models at the time of writing, and a
// deliberately high AnyModel price (15 / 60 dollars per million tokens) so
// that an unknown model cannot spend a budget faster than accounted.
func DefaultPrices() Prices {
	return Prices{
		"gpt-4o-mini":  {Input: 0.15, Output: 0.60},
		"gpt-4o":       {Input: 2.50, Output: 10.00},
		"gpt-4.1":      {Input: 2.00, Output: 8.00},
		"gpt-4.1-mini": {Input: 0.40, Output: 1.60},
		"gpt-4.1-nano": {Input: 0.10, Output: 0.40},
		"o4-mini":      {Input: 1.10, Output: 4.40},
		AnyModel:       {Input: 15.00, Output: 60.00},
	}
}

// ParsePrices reads a price table: s is either a JSON object
// ({"gpt-4o-mini": {"input": 0.15, "output": 0.6}, "*": {…}}) or the path of
// a file holding one. The result is validated.
func ParsePrices(s string) (Prices, error) {
	data := []byte(strings.TrimSpace(s))
	if len(data) == 0 || data[0] != '{' {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("read price table: %w", err)
		}
		data = b
	}
	var p Prices
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse price table: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate checks that the table is not empty and every price is finite and
// not negative.
func (p Prices) Validate() error {
	if len(p) == 0 {
		return fmt.Errorf("price table: no models")
	}
	for m, pr := range p {
		for _, v := range []float64{pr.Input, pr.Output} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("price table: model %q: prices must be finite and not negative", m)
			}
		}
		if m == "" {
			return fmt.Errorf("price table: empty model name")
		}
	}
	return nil
}

// Lookup returns the price of model and false when the table has none for
// it (no entry, no prefix, no AnyModel).
func (p Prices) Lookup(model string) (Price, bool) {
	if pr, ok := p[model]; ok {
		return pr, true
	}
	best := ""
	for k := range p {
		if k != AnyModel && len(k) > len(best) && strings.HasPrefix(model, k+"-") {
			best = k
		}
	}
	if best != "" {
		return p[best], true
	}
	pr, ok := p[AnyModel]
	return pr, ok
}
