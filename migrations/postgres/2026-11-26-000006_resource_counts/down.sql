DROP TRIGGER scim_groups_counted ON scim_groups;
DROP TRIGGER users_counted ON users;
DROP FUNCTION roster_count_resources();
DROP TABLE resource_counts;
