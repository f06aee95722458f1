package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// This file cuts text into extended grapheme clusters (Unicode UAX #29), the
// unit the Precompiled normalizer looks up, as the unicode-segmentation crate
// used by Hugging Face tokenizers does. Properties come from the standard
// library's Unicode tables where it has them (general categories,
// Other_Grapheme_Extend, Prepended_Concatenation_Mark) and from the short
// lists below where it does not.
//
// Rule GB9c (Indic conjuncts: consonant, virama, consonant) is not applied.
// The clusters it joins are at least 9 bytes long, and Precompiled rewrites a
// cluster of 6 bytes or more character by character, which gives the same
// result as cutting it apart, so the rule cannot change its output.

// gcb is a Grapheme_Cluster_Break property value.
type gcb uint8

const (
	gcbOther gcb = iota
	gcbCR
	gcbLF
	gcbControl
	gcbExtend
	gcbZWJ
	gcbRI
	gcbPrepend
	gcbSpacingMark
	gcbL
	gcbV
	gcbT
	gcbLV
	gcbLVT
)

// extPictographic lists the Extended_Pictographic code points (emoji-data),
// which rule GB11 keeps together around a zero width joiner.
var extPictographic = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0xA9, 0xA9, 1}, {0xAE, 0xAE, 1}, {0x203C, 0x203C, 1}, {0x2049, 0x2049, 1},
		{0x2122, 0x2122, 1}, {0x2139, 0x2139, 1}, {0x2194, 0x2199, 1}, {0x21A9, 0x21AA, 1},
		{0x231A, 0x231B, 1}, {0x2328, 0x2328, 1}, {0x2388, 0x2388, 1}, {0x23CF, 0x23CF, 1},
		{0x23E9, 0x23F3, 1}, {0x23F8, 0x23FA, 1}, {0x24C2, 0x24C2, 1}, {0x25AA, 0x25AB, 1},
		{0x25B6, 0x25B6, 1}, {0x25C0, 0x25C0, 1}, {0x25FB, 0x25FE, 1}, {0x2600, 0x2605, 1},
		{0x2607, 0x2612, 1}, {0x2614, 0x2685, 1}, {0x2690, 0x2705, 1}, {0x2708, 0x2712, 1},
		{0x2714, 0x2714, 1}, {0x2716, 0x2716, 1}, {0x271D, 0x271D, 1}, {0x2721, 0x2721, 1},
		{0x2728, 0x2728, 1}, {0x2733, 0x2734, 1}, {0x2744, 0x2744, 1}, {0x2747, 0x2747, 1},
		{0x274C, 0x274C, 1}, {0x274E, 0x274E, 1}, {0x2753, 0x2755, 1}, {0x2757, 0x2757, 1},
		{0x2763, 0x2767, 1}, {0x2795, 0x2797, 1}, {0x27A1, 0x27A1, 1}, {0x27B0, 0x27B0, 1},
		{0x27BF, 0x27BF, 1}, {0x2934, 0x2935, 1}, {0x2B05, 0x2B07, 1}, {0x2B1B, 0x2B1C, 1},
		{0x2B50, 0x2B50, 1}, {0x2B55, 0x2B55, 1}, {0x3030, 0x3030, 1}, {0x303D, 0x303D, 1},
		{0x3297, 0x3297, 1}, {0x3299, 0x3299, 1},
	},
	R32: []unicode.Range32{
		{0x1F000, 0x1F0FF, 1}, {0x1F10D, 0x1F10F, 1}, {0x1F12F, 0x1F12F, 1}, {0x1F16C, 0x1F171, 1},
		{0x1F17E, 0x1F17F, 1}, {0x1F18E, 0x1F18E, 1}, {0x1F191, 0x1F19A, 1}, {0x1F1AD, 0x1F1E5, 1},
		{0x1F201, 0x1F20F, 1}, {0x1F21A, 0x1F21A, 1}, {0x1F22F, 0x1F22F, 1}, {0x1F232, 0x1F23A, 1},
		{0x1F23C, 0x1F23F, 1}, {0x1F249, 0x1F3FA, 1}, {0x1F400, 0x1F53D, 1}, {0x1F546, 0x1F64F, 1},
		{0x1F680, 0x1F6FF, 1}, {0x1F774, 0x1F77F, 1}, {0x1F7D5, 0x1F7FF, 1}, {0x1F80C, 0x1F80F, 1},
		{0x1F848, 0x1F84F, 1}, {0x1F85A, 0x1F85F, 1}, {0x1F888, 0x1F88F, 1}, {0x1F8AE, 0x1F8FF, 1},
		{0x1F90C, 0x1F93A, 1}, {0x1F93C, 0x1F945, 1}, {0x1F947, 0x1FAFF, 1}, {0x1FC00, 0x1FFFD, 1},
	},
}

// gcbPrependExtra lists the Prepend characters that come from
// Indic_Syllabic_Category (Consonant_Preceding_Repha, Consonant_Prefixed),
// which the standard library does not carry.
var gcbPrependExtra = &unicode.RangeTable{
	R16: []unicode.Range16{{0x0D4E, 0x0D4E, 1}},
	R32: []unicode.Range32{
		{0x111C2, 0x111C3, 1}, {0x1193F, 0x1193F, 1}, {0x11941, 0x11941, 1},
		{0x11A3A, 0x11A3A, 1}, {0x11A84, 0x11A89, 1}, {0x11D46, 0x11D46, 1},
		{0x11F02, 0x11F02, 1},
	},
}

// gcbNotSpacingMark lists the spacing combining marks (Mc) that UAX #29
// excludes from SpacingMark, so that they break like ordinary letters.
var gcbNotSpacingMark = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x102B, 0x102C, 1}, {0x1038, 0x1038, 1}, {0x1062, 0x1064, 1}, {0x1067, 0x106D, 1},
		{0x1083, 0x1083, 1}, {0x1087, 0x108C, 1}, {0x108F, 0x108F, 1}, {0x109A, 0x109C, 1},
		{0x1A61, 0x1A61, 1}, {0x1A63, 0x1A64, 1}, {0xAA7B, 0xAA7B, 1}, {0xAA7D, 0xAA7D, 1},
	},
	R32: []unicode.Range32{{0x11720, 0x11721, 1}},
}

// gcbUnassignedIgnorable lists the unassigned Default_Ignorable_Code_Point
// ranges, which UAX #29 counts as Control.
var gcbUnassignedIgnorable = &unicode.RangeTable{
	R16: []unicode.Range16{{0x2065, 0x2065, 1}, {0xFFF0, 0xFFF8, 1}},
	R32: []unicode.Range32{{0xE0000, 0xE0000, 1}, {0xE0002, 0xE001F, 1}, {0xE0080, 0xE00FF, 1}, {0xE01F0, 0xE0FFF, 1}},
}

// graphemeBreakProperty returns the Grapheme_Cluster_Break value of r.
func graphemeBreakProperty(r rune) gcb {
	switch {
	case r == '\r':
		return gcbCR
	case r == '\n':
		return gcbLF
	case r == 0x200D:
		return gcbZWJ
	case r < 0x20 || (r >= 0x7F && r < 0xA0):
		return gcbControl
	case r < 0x300:
		// Latin-1 and Latin Extended letters and symbols: the common case,
		// kept off the table lookups below.
		if r == 0xAD {
			return gcbControl // SOFT HYPHEN is a format character
		}
		return gcbOther
	case r >= 0x1F1E6 && r <= 0x1F1FF:
		return gcbRI
	case r >= 0x1F3FB && r <= 0x1F3FF:
		return gcbExtend // emoji modifiers
	case r >= 0xAC00 && r <= 0xD7A3:
		if (r-0xAC00)%28 == 0 {
			return gcbLV
		}
		return gcbLVT
	case (r >= 0x1100 && r <= 0x115F) || (r >= 0xA960 && r <= 0xA97C):
		return gcbL
	case (r >= 0x1160 && r <= 0x11A7) || (r >= 0xD7B0 && r <= 0xD7C6):
		return gcbV
	case (r >= 0x11A8 && r <= 0x11FF) || (r >= 0xD7CB && r <= 0xD7FB):
		return gcbT
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Other_Grapheme_Extend):
		return gcbExtend
	case unicode.Is(unicode.Prepended_Concatenation_Mark, r) || unicode.Is(gcbPrependExtra, r):
		return gcbPrepend
	case r == 0x0E33 || r == 0x0EB3:
		return gcbSpacingMark
	case unicode.Is(unicode.Mc, r):
		if unicode.Is(gcbNotSpacingMark, r) {
			return gcbOther
		}
		return gcbSpacingMark
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) && r != 0x200C:
		return gcbControl
	case unicode.Is(gcbUnassignedIgnorable, r):
		return gcbControl
	}
	return gcbOther
}

// nextGraphemeLen returns the byte length of the extended grapheme cluster
// at the start of s, which must be valid UTF-8 and not empty.
func nextGraphemeLen(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	prev := graphemeBreakProperty(r)
	// emoji tracks GB11: an Extended_Pictographic followed by Extend* (1),
	// then by a zero width joiner (2).
	emoji := 0
	if unicode.Is(extPictographic, r) {
		emoji = 1
	}
	riCount := 0
	if prev == gcbRI {
		riCount = 1
	}
	for n < len(s) {
		r, w := utf8.DecodeRuneInString(s[n:])
		cur := graphemeBreakProperty(r)
		pict := emoji == 2 && unicode.Is(extPictographic, r)
		if graphemeBreak(prev, cur, pict, riCount) {
			break
		}
		switch {
		case unicode.Is(extPictographic, r):
			emoji = 1
		case emoji == 1 && cur == gcbExtend:
		case emoji == 1 && cur == gcbZWJ:
			emoji = 2
		default:
			emoji = 0
		}
		if cur == gcbRI {
			riCount++
		} else {
			riCount = 0
		}
		prev = cur
		n += w
	}
	return n
}

// graphemeBreak reports whether UAX #29 breaks between a character of
// property prev and one of property cur; pictAfterZWJ says rule GB11 holds,
// and riCount is the number of regional indicators just before cur.
func graphemeBreak(prev, cur gcb, pictAfterZWJ bool, riCount int) bool {
	switch {
	case prev == gcbCR && cur == gcbLF: // GB3
		return false
	case prev == gcbControl || prev == gcbCR || prev == gcbLF: // GB4
		return true
	case cur == gcbControl || cur == gcbCR || cur == gcbLF: // GB5
		return true
	case prev == gcbL && (cur == gcbL || cur == gcbV || cur == gcbLV || cur == gcbLVT): // GB6
		return false
	case (prev == gcbLV || prev == gcbV) && (cur == gcbV || cur == gcbT): // GB7
		return false
	case (prev == gcbLVT || prev == gcbT) && cur == gcbT: // GB8
		return false
	case cur == gcbExtend || cur == gcbZWJ: // GB9
		return false
	case cur == gcbSpacingMark: // GB9a
		return false
	case prev == gcbPrepend: // GB9b
		return false
	case pictAfterZWJ: // GB11
		return false
	case prev == gcbRI && cur == gcbRI: // GB12, GB13
		return riCount%2 == 0
	}
	return true // GB999
}
