/* unit.h - what every cmocka test file includes first (cmocka.h needs these before it). */
#ifndef KEEL_UNIT_H
#define KEEL_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#endif
