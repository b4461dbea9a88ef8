/* model.c - names of the model's values (see model.h). */
#include "model.h"

const char *version_name(int version)
{
	switch (version) {
	case VERSION_DEFAULT:
		return "default";
	case VERSION_DRAFT:
		return "draft";
	case VERSION_LIVE:
		return "live";
	default:
		return "?";
	}
}

const char *role_name(int role)
{
	static const char *const names[] = {"none", "admin", "editor", "viewer", "runtime"};
	return role >= ROLE_ADMIN && role <= ROLE_RUNTIME ? names[role] : names[0];
}

bool version_is_env(int v)
{
	return v == VERSION_DRAFT || v == VERSION_LIVE;
}
