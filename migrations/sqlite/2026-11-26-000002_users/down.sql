DROP TABLE user_values;
DROP TABLE users;
