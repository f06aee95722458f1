package tokenizer

import (
	"encoding/json"
	"fmt"
)

// templatePiece is one item of a template: either the sequence itself or a
// special token's ids.
type templatePiece struct {
	sequence bool
	ids      []int32
	typeID   int32
}

// template is a post-processor that lays the sequence out between special
// tokens. It implements "TemplateProcessing" and, with a fixed layout,
// "BertProcessing" and "RobertaProcessing" (which differ only in offsets,
// which this package does not report).
type template struct {
	single []templatePiece
	added  int
}

func (t *template) Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32) {
	for _, p := range t.single {
		src := p.ids
		if p.sequence {
			src = seq
		}
		ids = append(ids, src...)
		for range src {
			typeIDs = append(typeIDs, p.typeID)
		}
	}
	return ids, typeIDs
}

func (t *template) Added() int { return t.added }

// maxID returns the largest special token id of the template, or -1.
func (t *template) maxID() int32 {
	m := int32(-1)
	for _, p := range t.single {
		for _, id := range p.ids {
			m = max(m, id)
		}
	}
	return m
}

// maxID returns the largest special token id of the processors, or -1.
func (q sequenceProcessor) maxID() int32 {
	m := int32(-1)
	for _, p := range q {
		if x, ok := p.(interface{ maxID() int32 }); ok {
			m = max(m, x.maxID())
		}
	}
	return m
}

func newTemplate(pieces []templatePiece) *template {
	t := &template{single: pieces}
	for _, p := range pieces {
		if !p.sequence {
			t.added += len(p.ids)
		}
	}
	return t
}

// parseTemplate decodes the "single" template of TemplateProcessing, whose
// items are {"SpecialToken": {"id", "type_id"}} or {"Sequence": {"id",
// "type_id"}}.
func parseTemplate(raw []byte) (PostProcessor, error) {
	var cfg struct {
		Single  json.RawMessage `json:"single"`
		Special map[string]struct {
			ID  string  `json:"id"`
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, formatErr(err)
	}
	var items []templateItem
	if err := json.Unmarshal(cfg.Single, &items); err != nil {
		return nil, formatErr(fmt.Errorf("single: %v", err))
	}
	var pieces []templatePiece
	nseq := 0
	for i, it := range items {
		switch {
		case it.Sequence != nil:
			nseq++
			pieces = append(pieces, templatePiece{sequence: true, typeID: it.Sequence.TypeID})
		case it.Special != nil:
			sp, ok := cfg.Special[it.Special.ID]
			if !ok {
				return nil, formatErr(fmt.Errorf("single[%d]: special token %q missing from special_tokens", i, it.Special.ID))
			}
			for _, id := range sp.IDs {
				if id < 0 {
					return nil, formatErr(fmt.Errorf("special token %q has negative id %d", it.Special.ID, id))
				}
			}
			pieces = append(pieces, templatePiece{ids: sp.IDs, typeID: it.Special.TypeID})
		default:
			return nil, formatErr(fmt.Errorf("single[%d]: neither SpecialToken nor Sequence", i))
		}
	}
	if nseq != 1 {
		return nil, formatErr(fmt.Errorf("single template has %d sequences, want 1", nseq))
	}
	return newTemplate(pieces), nil
}

// templateItem is one item of a serialised template.
type templateItem struct {
	Special  *templateRef `json:"SpecialToken"`
	Sequence *templateRef `json:"Sequence"`
}

type templateRef struct {
	ID     string `json:"id"`
	TypeID int32  `json:"type_id"`
}

// parsePair decodes the ["token", id] pairs of BertProcessing and
// RobertaProcessing.
func parsePair(raw json.RawMessage, name string) (int32, error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return 0, formatErr(fmt.Errorf("%s: want [\"token\", id]", name))
	}
	var id int32
	if err := json.Unmarshal(pair[1], &id); err != nil || id < 0 {
		return 0, formatErr(fmt.Errorf("%s: bad id %s", name, pair[1]))
	}
	return id, nil
}

func parseClsSep(raw []byte) (PostProcessor, error) {
	var cfg struct {
		Sep json.RawMessage `json:"sep"`
		Cls json.RawMessage `json:"cls"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, formatErr(err)
	}
	cls, err := parsePair(cfg.Cls, "cls")
	if err != nil {
		return nil, err
	}
	sep, err := parsePair(cfg.Sep, "sep")
	if err != nil {
		return nil, err
	}
	return newTemplate([]templatePiece{{ids: []int32{cls}}, {sequence: true}, {ids: []int32{sep}}}), nil
}

// noopProcessor is the ByteLevel post-processor, which only trims offsets
// and so leaves the ids alone.
type noopProcessor struct{}

func (noopProcessor) Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32) {
	ids = append(ids, seq...)
	for range seq {
		typeIDs = append(typeIDs, 0)
	}
	return ids, typeIDs
}

func (noopProcessor) Added() int { return 0 }

// sequenceProcessor applies its post-processors in turn, each one wrapping
// the output of the previous one.
type sequenceProcessor []PostProcessor

func (q sequenceProcessor) Process(ids, typeIDs []int32, seq []int32) ([]int32, []int32) {
	if len(q) == 0 {
		return noopProcessor{}.Process(ids, typeIDs, seq)
	}
	cur := seq
	var tmp, tmpTypes []int32
	for i, p := range q {
		if i == len(q)-1 {
			return p.Process(ids, typeIDs, cur)
		}
		tmp, tmpTypes = p.Process(tmp[:0], tmpTypes[:0], cur)
		cur = append([]int32(nil), tmp...)
	}
	return ids, typeIDs
}

func (q sequenceProcessor) Added() int {
	n := 0
	for _, p := range q {
		n += p.Added()
	}
	return n
}

func init() {
	postProcessorCtors["TemplateProcessing"] = func(raw []byte, _ Model) (PostProcessor, error) { return parseTemplate(raw) }
	postProcessorCtors["BertProcessing"] = func(raw []byte, _ Model) (PostProcessor, error) { return parseClsSep(raw) }
	postProcessorCtors["RobertaProcessing"] = func(raw []byte, _ Model) (PostProcessor, error) { return parseClsSep(raw) }
	postProcessorCtors["ByteLevel"] = func([]byte, Model) (PostProcessor, error) { return noopProcessor{}, nil }
	postProcessorCtors["Sequence"] = func(raw []byte, m Model) (PostProcessor, error) {
		var cfg struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		q := make(sequenceProcessor, 0, len(cfg.Processors))
		for i, r := range cfg.Processors {
			p, err := newPostProcessor(r, m)
			if err != nil {
				return nil, fmt.Errorf("processors[%d]: %w", i, err)
			}
			q = append(q, p)
		}
		return q, nil
	}
}
