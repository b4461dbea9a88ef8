/*
 * suites.h - every tcase of the unit suite, once, by room: SUITE(name) is the tcase "name" made by
 * tcase_name() in test_name.c. tests/CMakeLists.txt reads this file to make one ctest entry per
 * tcase (unit.name).
 */
SUITE(validate) /* domain */
SUITE(rules)    /* domain */
SUITE(cache)    /* domain */
SUITE(crypt)    /* crypt */
SUITE(status)   /* api */
SUITE(pbjson)   /* proto: the JSON codec */
SUITE(settings) /* daemon */
SUITE(log)      /* obs */
SUITE(dotenv)   /* the CLI */
