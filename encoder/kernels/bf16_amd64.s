//go:build amd64 && !purego

#include "textflag.h"

// func roundBF16AVX2(dst, x *float32, n int)
//
// RoundBF16To on n floats, n a multiple of 8: per lane,
// r = (b + 0x7fff + (b>>16)&1) &^ 0xffff, or (b | 0x400000) &^ 0xffff
// where x is NaN (VCMPPS unordered selects it).
TEXT ·roundBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX

	MOVL         $1, AX
	VMOVD        AX, X8
	VPBROADCASTD X8, Y8            // 1
	MOVL         $0x7fff, AX
	VMOVD        AX, X9
	VPBROADCASTD X9, Y9            // 0x7fff
	MOVL         $0xffff0000, AX
	VMOVD        AX, X10
	VPBROADCASTD X10, Y10          // 0xffff0000
	MOVL         $0x00400000, AX
	VMOVD        AX, X11
	VPBROADCASTD X11, Y11          // quiet bit

rb_loop:
	CMPQ      CX, $8
	JLT       rb_done
	VMOVUPS   (SI), Y0
	VPSRLD    $16, Y0, Y1
	VPAND     Y8, Y1, Y1
	VPADDD    Y9, Y0, Y2
	VPADDD    Y1, Y2, Y2
	VPAND     Y10, Y2, Y2
	VPOR      Y11, Y0, Y4
	VPAND     Y10, Y4, Y4
	VCMPPS    $3, Y0, Y0, Y3
	VBLENDVPS Y3, Y4, Y2, Y2
	VMOVUPS   Y2, (DI)
	ADDQ      $32, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       rb_loop

rb_done:
	VZEROUPPER
	RET
