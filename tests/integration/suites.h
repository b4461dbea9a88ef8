/*
 * suites.h - every tcase of the integration suite, once: SUITE(name) is the tcase "name" made by
 * tcase_name() in test_*.c. main.c runs them in this order; tests/CMakeLists.txt reads this file
 * to make one ctest entry per tcase (integration.name), so `ctest -R watch` runs one.
 */
SUITE(projects_secrets)
SUITE(health)
SUITE(environments)
SUITE(model)
SUITE(client)
SUITE(access)
SUITE(keys)
SUITE(hardening)
SUITE(replicas)
SUITE(watch)
SUITE(fleet)
SUITE(database)
SUITE(http)
SUITE(changes)
